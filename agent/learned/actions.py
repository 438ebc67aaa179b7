"""The action catalog the learned model scores, and each customer's allowed actions as a mask.

An action is (template_id, discount_pct) with the discount on the grid of 5 within the action bank's
[min_discount_pct, max_discount_pct] range. Order: action bank rows in file order, discounts
ascending: the same indices as `evals.actions.ActionSpace` and `warehouse.truth.action_grid()`.

A customer's allowed actions: their segment's bank rows, on the channels eligibility allows
(consent, frequency caps, ...), with the discount <= the run's cap. `allowed_mask` turns that into an
(n_customers, n_actions) boolean matrix, the input of `LearnedModel.score` and `explore.choose`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from core.contracts import CHANNELS, SEGMENTS, ActionSpec
from core.reference import load_reference

GRID_STEP = 5.0
DISCOUNT_LEVELS = (0.0, 5.0, 10.0, 15.0)  # every grid discount the bank allows (max 15)


@dataclass(frozen=True, eq=False)
class ActionCatalog:
    """Every (template, discount) action of the bank with its channel, segment (template family) and
    discount, as aligned arrays, plus the integer codes the features use."""

    specs: tuple[ActionSpec, ...]
    template_ids: np.ndarray = field(init=False)
    channels: np.ndarray = field(init=False)
    segments: np.ndarray = field(init=False)
    discounts: np.ndarray = field(init=False)
    templates: tuple[str, ...] = field(init=False)  # distinct templates, bank order
    template_code: np.ndarray = field(init=False)
    channel_code: np.ndarray = field(init=False)
    family_code: np.ndarray = field(init=False)  # index into SEGMENTS
    discount_code: np.ndarray = field(init=False)  # index into DISCOUNT_LEVELS

    def __post_init__(self) -> None:
        tids, chans, segs, discs = [], [], [], []
        for spec in self.specs:
            d = math.ceil(spec.min_discount_pct / GRID_STEP - 1e-9) * GRID_STEP
            while d <= spec.max_discount_pct + 1e-9:
                tids.append(spec.template_id)
                chans.append(spec.channel)
                segs.append(spec.segment)
                discs.append(float(d))
                d += GRID_STEP
        templates = tuple(dict.fromkeys(tids))
        if any(d not in DISCOUNT_LEVELS for d in discs):
            raise ValueError(f"action bank discounts must lie on {DISCOUNT_LEVELS}")
        sets = {
            "template_ids": np.array(tids, dtype=object),
            "channels": np.array(chans, dtype=object),
            "segments": np.array(segs, dtype=object),
            "discounts": np.array(discs, dtype=np.float64),
            "templates": templates,
            "template_code": np.array([templates.index(t) for t in tids], dtype=np.int64),
            "channel_code": np.array([CHANNELS.index(c) for c in chans], dtype=np.int64),
            "family_code": np.array([SEGMENTS.index(s) for s in segs], dtype=np.int64),
            "discount_code": np.array([DISCOUNT_LEVELS.index(d) for d in discs], dtype=np.int64),
        }
        for name, value in sets.items():
            object.__setattr__(self, name, value)
        object.__setattr__(
            self, "_index", {(t, d): i for i, (t, d) in enumerate(zip(tids, discs, strict=True))}
        )
        ranges: dict[str, tuple[float, float]] = {}
        for t, d in zip(tids, discs, strict=True):
            lo, hi = ranges.get(t, (d, d))
            ranges[t] = (min(lo, d), max(hi, d))
        object.__setattr__(self, "_range", ranges)

    def __len__(self) -> int:
        return len(self.template_ids)

    def label(self, i: int) -> str:
        return f"{self.template_ids[i]}@{int(self.discounts[i])}"

    def indices(
        self, template_ids: np.ndarray, discount_pcts: np.ndarray, *, snap: bool = False
    ) -> np.ndarray:
        """Action index of each (template_id, discount_pct); -1 for a pair not in the catalog (an
        unknown template, or without `snap` a discount off the grid). With `snap`, a discount is
        mapped onto the template's grid first: nearest multiple of 5, ties down (a decision is never
        credited with a bigger discount than it gave), clipped into the template's range."""
        tids = np.asarray(template_ids, dtype=object)
        if not len(tids):
            return np.full(0, -1, dtype=np.int64)
        names, codes = np.unique(tids.astype(str), return_inverse=True)
        return self.indices_coded(codes.ravel(), names, discount_pcts, snap=snap)

    def indices_coded(
        self, codes: np.ndarray, names: np.ndarray, discount_pcts: np.ndarray, *, snap: bool = False
    ) -> np.ndarray:
        """`indices` with the templates given as codes into `names` (e.g. an Arrow dictionary).
        Vectorised: loops over distinct templates and discounts only."""
        codes = np.asarray(codes, dtype=np.int64)
        discs = np.asarray(discount_pcts, dtype=np.float64)
        if not len(codes):
            return np.full(0, -1, dtype=np.int64)
        tnames = [str(t) for t in names]
        if snap:
            lo = np.array([self._range.get(t, (0.0, 0.0))[0] for t in tnames])  # type: ignore[attr-defined]
            hi = np.array([self._range.get(t, (0.0, 0.0))[1] for t in tnames])  # type: ignore[attr-defined]
            discs = np.clip(np.ceil(discs / GRID_STEP - 0.5) * GRID_STEP, lo[codes], hi[codes])
        d_names, d_inv = np.unique(discs, return_inverse=True)
        lut = np.array(
            [[self._index.get((t, float(d)), -1) for d in d_names] for t in tnames],  # type: ignore[attr-defined]
            dtype=np.int64,
        ).reshape(len(tnames), len(d_names))
        return lut[codes, d_inv.ravel()]  # type: ignore[no-any-return]

    def segment_mask(self, segments: np.ndarray) -> np.ndarray:
        """(n, n_actions): the actions of each row's segment's bank (all discounts on the grid)."""
        segs = np.asarray(segments, dtype=object)
        return segs[:, None] == self.segments[None, :]  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def default_catalog() -> ActionCatalog:
    return ActionCatalog(load_reference().actions)


def channel_matrix(allowed_channels: Sequence[Sequence[str]]) -> np.ndarray:
    """[['email', 'push'], [], ...] -> (n, 3) booleans in CHANNELS order."""
    out = np.zeros((len(allowed_channels), len(CHANNELS)), dtype=bool)
    for i, chans in enumerate(allowed_channels):
        for ch in chans:
            out[i, CHANNELS.index(ch)] = True
    return out


def allowed_mask(
    segments: np.ndarray | Sequence[str],
    allowed_channels: np.ndarray | Sequence[Sequence[str]],
    discount_cap: float,
    catalog: ActionCatalog | None = None,
) -> np.ndarray:
    """(n, n_actions) booleans: row i's segment's bank actions, on a channel row i may be contacted
    on (`allowed_channels`: Eligibility.allowed_channels per customer, or an (n, 3) boolean matrix in
    CHANNELS order), with discount <= `discount_cap`. A row with no allowed channel is all False."""
    cat = catalog or default_catalog()
    chans = np.asarray(allowed_channels, dtype=bool) if isinstance(allowed_channels, np.ndarray) else None
    if chans is None:
        chans = channel_matrix(allowed_channels)  # type: ignore[arg-type]
    if chans.ndim != 2 or chans.shape[1] != len(CHANNELS):
        raise ValueError(f"allowed_channels must be (n, {len(CHANNELS)}) booleans or lists of channels")
    mask = cat.segment_mask(np.asarray(segments, dtype=object))
    if mask.shape[0] != chans.shape[0]:
        raise ValueError(f"{mask.shape[0]} segments but {chans.shape[0]} rows of allowed channels")
    mask &= chans[:, cat.channel_code]
    mask &= (cat.discounts <= discount_cap + 1e-9)[None, :]
    return mask

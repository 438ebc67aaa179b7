"""The action space the off-policy estimators index into: (template_id, discount_pct) pairs.

An action is one template of the action bank with one discount on the logging grid: multiples of 5
within the template's [min_discount_pct, max_discount_pct] range (the same grid the synthetic data
generator logs, see warehouse/truth.py `action_grid`). A policy may give any discount a guardrail
allows (e.g. 7%); to be matched against the logged data it is mapped onto the grid by
`ActionSpace.index` (see its docstring). Order: action bank rows in file order, discounts ascending.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from core.actions import GRID_STEP, grid_discounts
from core.contracts import ActionSpec
from core.reference import load_reference

NO_ACTION = -1


class UnknownTemplateError(KeyError):
    """A template_id that is not in the action bank cannot be matched to any logged action."""

    def __init__(self, template_id: str) -> None:
        super().__init__(template_id)
        self.template_id = template_id

    def __str__(self) -> str:
        return f"template_id {self.template_id!r} is not in the action bank"


def snap_discount(discount_pct: float, lo: float, hi: float, step: float = GRID_STEP) -> float:
    """Map a discount onto the grid: nearest multiple of `step`, ties to the LOWER multiple (a policy
    is never credited with a bigger discount than it gave), then clipped into the grid of [lo, hi]."""
    grid_lo = math.ceil(lo / step - 1e-9) * step
    grid_hi = math.floor(hi / step + 1e-9) * step
    snapped = math.ceil(discount_pct / step - 0.5) * step  # x.5 rounds down
    return float(min(max(snapped, grid_lo), grid_hi))


@dataclass(frozen=True)
class ActionSpace:
    """Every (template_id, discount_pct) action of the bank, with its segment and channel."""

    specs: tuple[ActionSpec, ...]
    template_ids: tuple[str, ...] = field(init=False)
    discounts: tuple[float, ...] = field(init=False)
    segments: tuple[str, ...] = field(init=False)
    channels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        tids, discs, segs, chans = [], [], [], []
        for spec in self.specs:
            for d in grid_discounts(spec.min_discount_pct, spec.max_discount_pct):
                tids.append(spec.template_id)
                discs.append(d)
                segs.append(spec.segment)
                chans.append(spec.channel)
        object.__setattr__(self, "template_ids", tuple(tids))
        object.__setattr__(self, "discounts", tuple(discs))
        object.__setattr__(self, "segments", tuple(segs))
        object.__setattr__(self, "channels", tuple(chans))
        object.__setattr__(
            self, "_index", {(t, d): i for i, (t, d) in enumerate(zip(tids, discs, strict=True))}
        )
        object.__setattr__(self, "_spec", {s.template_id: s for s in self.specs})

    def __len__(self) -> int:
        return len(self.template_ids)

    def label(self, i: int) -> str:
        return f"{self.template_ids[i]}@{int(self.discounts[i])}"

    def index(self, template_id: str, discount_pct: float) -> int:
        """Index of the logged action a (template_id, discount_pct) decision counts as.

        The discount is snapped to the template's grid with `snap_discount` (nearest multiple of 5,
        ties down, clipped into the template's range), so 7% on winback_soft counts as 5%, 8% as
        10%, and 12% as 10% (the template's max). An unknown template raises UnknownTemplateError.
        """
        spec = self._spec.get(template_id)  # type: ignore[attr-defined]
        if spec is None:
            raise UnknownTemplateError(template_id)
        d = snap_discount(float(discount_pct), spec.min_discount_pct, spec.max_discount_pct)
        return self._index[(template_id, d)]  # type: ignore[attr-defined,no-any-return]

    def indices(self, template_ids: np.ndarray, discount_pcts: np.ndarray) -> np.ndarray:
        """Vectorized `index` (loops over distinct (template, discount) pairs only)."""
        tids = np.asarray(template_ids, dtype=object)
        discs = np.asarray(discount_pcts, dtype=np.float64)
        out = np.empty(len(tids), dtype=np.int64)
        pairs: Any = np.rec.fromarrays([tids.astype(str), discs]) if len(tids) else []
        if len(tids) == 0:
            return out
        uniq, inverse = np.unique(pairs, return_inverse=True)
        codes = np.array([self.index(str(t), float(d)) for t, d in uniq], dtype=np.int64)
        out[:] = codes[inverse.ravel()]
        return out

    def actions_for_segment(self, segment: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.segments) if s == segment], dtype=np.int64)


@lru_cache(maxsize=1)
def default_action_space() -> ActionSpace:
    return ActionSpace(load_reference().actions)


def action_index(template_id: str, discount_pct: float, space: ActionSpace | None = None) -> int:
    """Index of (template_id, discount_pct) in the action space, with the discount mapped onto the
    logging grid (multiples of 5 within the template's range; nearest, ties down, clipped).
    See `ActionSpace.index`."""
    return (space or default_action_space()).index(template_id, discount_pct)

"""What an action may be: the whole-percent discount range of a banked template under a cap.

Discounts are whole percentages because approved templates state `discount_pct|int`: a final 7.5%
would be announced as 7%, and the message must state exactly what is given. Policies use these
bounds to propose what is allowed; the guardrails use the same bounds to clamp what they receive."""

from __future__ import annotations

import math
from collections.abc import Iterable

from core.contracts import ActionSpec
from core.reference import ReferenceData


def discount_bounds(action: ActionSpec, cap: float) -> tuple[int, int] | None:
    """Whole-percent bounds [max(0, bank min), min(cap, bank max)], or None if no whole percentage fits."""
    lo = math.ceil(max(0.0, action.min_discount_pct) - 1e-9)
    hi = math.floor(min(cap, action.max_discount_pct) + 1e-9)
    return (lo, hi) if lo <= hi else None


# Discounts a policy chooses among, and the grid the campaign history was logged on: multiples of
# GRID_STEP within a template's range (evals.actions indexes the same grid; warehouse/truth.py draws
# the history on it).
GRID_STEP = 5.0


def grid_discounts(lo: float, hi: float, step: float = GRID_STEP) -> list[float]:
    """Multiples of `step` in [lo, hi], ascending."""
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [float(k * step) for k in range(first, last + 1)]


def allowed_actions(
    segment: str, allowed_channels: Iterable[str], cap: float, ref: ReferenceData
) -> list[tuple[ActionSpec, float]]:
    """Every action a policy may propose to a customer: the segment's banked templates on an allowed
    channel, each with each grid discount within [bank min, min(cap, bank max)], in bank order."""
    channels = set(allowed_channels)
    out: list[tuple[ActionSpec, float]] = []
    for action in ref.actions_for(segment):
        if action.channel not in channels or (segment, action.template_id) not in ref.bank:
            continue
        bounds = discount_bounds(action, cap)
        if bounds is not None:
            out += [(action, d) for d in grid_discounts(*bounds)]
    return out

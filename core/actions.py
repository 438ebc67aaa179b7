"""What an action may be: the whole-percent discount range of a banked template under a cap.

Discounts are whole percentages because approved templates state `discount_pct|int`: a final 7.5%
would be announced as 7%, and the message must state exactly what is given. Policies use these
bounds to propose what is allowed; the guardrails use the same bounds to clamp what they receive."""

from __future__ import annotations

import math

from core.contracts import ActionSpec


def discount_bounds(action: ActionSpec, cap: float) -> tuple[int, int] | None:
    """Whole-percent bounds [max(0, bank min), min(cap, bank max)], or None if no whole percentage fits."""
    lo = math.ceil(max(0.0, action.min_discount_pct) - 1e-9)
    hi = math.floor(min(cap, action.max_discount_pct) + 1e-9)
    return (lo, hi) if lo <= hi else None

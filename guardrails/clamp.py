"""The discount clamp: a proposed discount made whole, finite and within the action's bounds."""

from __future__ import annotations

import math


def clamp_discount(proposed: float, lo: int, hi: int) -> tuple[float, list[str]]:
    """(final, reason codes). NaN -> the minimum; +inf -> the maximum; -inf -> the minimum."""
    if math.isnan(proposed):
        return float(lo), ["discount_not_finite"]
    if math.isinf(proposed):
        return float(hi if proposed > 0 else lo), ["discount_not_finite", "discount_clamped"]
    if proposed > hi:
        return float(hi), ["discount_clamped"]
    if proposed < lo:
        return float(lo), ["discount_clamped"]
    final = float(math.floor(proposed + 1e-9))
    return final, (["discount_rounded"] if final != proposed else [])

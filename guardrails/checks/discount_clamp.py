"""The discount clamp: a whole percentage within the bank's range and under the run's cap."""

from __future__ import annotations

import math
from typing import Any

from core.actions import discount_bounds
from core.contracts import GuardrailCheck
from guardrails.checks.base import ProposalCheck, Vetting, entry
from guardrails.checks.words import Setting, pct
from guardrails.clamp import clamp_discount


class DiscountClamp(ProposalCheck):
    name = "discount_clamp"
    label = "discount clamped"

    def run(self, v: Vetting) -> GuardrailCheck:
        assert v.action is not None, "the action bank check runs first"
        bounds = discount_bounds(v.action, v.settings.discount_cap)
        if bounds is None:
            v.failure = "discount_infeasible"
            before = _num(v.proposal.discount_pct)
            return entry(name=self.name, verdict="failed", before=before, after=None, reason=v.failure)
        try:
            proposed = float(v.proposal.discount_pct)
        except (TypeError, ValueError):
            proposed = math.nan
        v.discount, codes = clamp_discount(proposed, *bounds)
        v.reasons += codes
        return entry(
            name=self.name,
            verdict="fixed" if codes else "pass",
            before=_num(proposed),
            after=v.discount,
            reason=",".join(codes),
        )

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        if c.verdict == "pass":
            return f"discount {pct(c.before)} within the bank's range and the {s.guard.discount_cap:g}% cap"
        if c.verdict == "fixed":
            return f"discount {pct(c.before)} -> {pct(c.after)} ({c.reason.replace('_', ' ')})"
        return f"no discount fits the bank's range under the {s.guard.discount_cap:g}% cap"


def _num(x: Any) -> Any:
    """A number as logged: a finite float as is, anything else as its repr (JSON has no NaN)."""
    return x if isinstance(x, float) and math.isfinite(x) else repr(x)

"""The holdout arm: a salted hash keeps a share of all customers, and of each segment, uncontacted."""

from __future__ import annotations

from core.contracts import GuardrailCheck
from guardrails.checks.base import EligibilityCheck, Screen, entry
from guardrails.checks.words import Setting
from guardrails.holdout import global_bucket, segment_bucket


class Holdout(EligibilityCheck):
    """Holds a customer out so lift can be measured; it never suppresses (the arm decides later)."""

    name = "holdout"
    label = "holdout"

    def run(self, s: Screen) -> GuardrailCheck:
        cid, salt = s.ctx.customer_id, s.settings.holdout_salt
        if global_bucket(cid, salt) < s.settings.global_holdout_pct * 100:
            s.arm, s.holdout_reason = "holdout", "holdout_global"
        elif segment_bucket(cid, s.ctx.segment, salt) < s.settings.segment_holdout_pct * 100:
            s.arm, s.holdout_reason = "holdout", "holdout_segment"
        verdict = "pass" if s.arm == "treatment" else "failed"
        return entry(name=self.name, verdict=verdict, before=None, after=s.arm, reason=s.holdout_reason)

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        if c.verdict == "pass":
            return "treatment arm: not held out"
        if c.reason == "holdout_global":
            return (
                f"in the global control group ({s.guard.global_holdout_pct:g}% of all customers, drawn by a "
                "salted hash): never contacted, so lift can be measured"
            )
        seg = s.segment or "segment"
        return (
            f"in the {seg} holdout ({s.guard.segment_holdout_pct:g}% of the segment, drawn by a salted hash): "
            "never contacted, so the segment's lift can be measured"
        )

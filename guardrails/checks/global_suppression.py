"""The global suppression list: a customer on it is never contacted."""

from __future__ import annotations

from core.contracts import GuardrailCheck
from guardrails.checks.base import EligibilityCheck, Screen, entry
from guardrails.checks.words import Setting


class GlobalSuppression(EligibilityCheck):
    name = "global_suppression"
    label = "global suppression"
    blocks = True
    code = "globally_suppressed"

    def run(self, s: Screen) -> GuardrailCheck:
        failed = s.ctx.globally_suppressed
        return entry(
            name=self.name,
            verdict="failed" if failed else "pass",
            before=None,
            after=None,
            reason=self.code if failed else "",
        )

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        return (
            "on the global suppression list: never contacted"
            if c.verdict == "failed"
            else "not globally suppressed"
        )

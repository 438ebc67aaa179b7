"""Channel consent: only the channels the customer opted into stay open."""

from __future__ import annotations

from core.contracts import CHANNELS, GuardrailCheck
from guardrails.checks.base import EligibilityCheck, Screen, entry
from guardrails.checks.words import Setting, names


class Consent(EligibilityCheck):
    name = "consent"
    label = "no consent"
    blocks = True
    code = "no_consented_channel"

    def run(self, s: Screen) -> GuardrailCheck:
        s.consented = [ch for ch in CHANNELS if getattr(s.ctx.consent, ch)]
        return entry(
            name=self.name,
            verdict="pass" if s.consented else "failed",
            before=None,
            after=s.consented,
            reason="" if s.consented else self.code,
        )

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        if c.verdict == "failed":
            return "no consent on any channel (email, sms and push all opted out)"
        return f"consented: {names(c.after)}"

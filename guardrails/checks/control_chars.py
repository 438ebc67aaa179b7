"""Control characters are stripped from the copy and the rationale before any message check reads them."""

from __future__ import annotations

from core.contracts import GuardrailCheck
from guardrails.checks.base import ProposalCheck, Vetting, entry
from guardrails.checks.words import Setting
from guardrails.message import strip_control

RATIONALE_MAX = 1000


class ControlChars(ProposalCheck):
    name = "control_chars"
    label = "control characters"

    def run(self, v: Vetting) -> GuardrailCheck | None:
        p = v.proposal
        v.subject = strip_control(p.subject) if isinstance(p.subject, str) else None
        v.message = strip_control(p.message) if isinstance(p.message, str) else ""
        rationale = p.rationale if isinstance(p.rationale, str) else ""
        v.rationale = strip_control(rationale)[:RATIONALE_MAX]
        if v.subject == p.subject and v.message == p.message:
            return None
        v.reasons.append("control_chars_stripped")
        return entry(
            name=self.name, verdict="fixed", before=None, after=None, reason="control_chars_stripped"
        )

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        return "control characters stripped from the copy"

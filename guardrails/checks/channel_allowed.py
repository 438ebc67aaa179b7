"""The proposed channel must be one eligibility left open for this customer now."""

from __future__ import annotations

from core.contracts import GuardrailCheck
from guardrails.checks.base import ProposalCheck, Vetting, entry
from guardrails.checks.words import Setting, names


class ChannelAllowed(ProposalCheck):
    name = "channel_allowed"
    label = "channel allowed"

    def run(self, v: Vetting) -> GuardrailCheck:
        channel, allowed = v.proposal.channel, v.eligibility.allowed_channels
        if channel not in allowed:
            v.failure = "channel_not_allowed"
            return entry(
                name=self.name, verdict="failed", before=channel, after=list(allowed), reason=v.failure
            )
        return entry(name=self.name, verdict="pass", before=channel, after=None, reason="")

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        if c.verdict == "pass":
            return f"{c.before} is allowed now"
        return f"{c.before} is not allowed now (allowed: {names(c.after)})"

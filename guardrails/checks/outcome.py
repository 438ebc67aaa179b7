"""The steps that settle a decision after vetting: no proposal at all, the rules fallback, and the
deferral of a chosen channel that is in its quiet hours. The engine records them at their step."""

from __future__ import annotations

from core.contracts import GuardrailCheck
from guardrails.checks.base import Check, entry
from guardrails.checks.words import Setting, local, utc, when


class NoProposal(Check):
    name = "proposal"
    label = "no proposal"

    def record(self, reason: str) -> GuardrailCheck:
        return entry(name=self.name, verdict="failed", before=None, after=None, reason=reason)

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        return f"the policy made no proposal ({c.reason})"


class Fallback(Check):
    name = "fallback"
    label = "rules fallback"

    def record(self, policy: str, reason: str) -> GuardrailCheck:
        return entry(name=self.name, verdict="fixed", before=policy, after="rules", reason=reason)

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        return f"{c.before} proposal refused ({c.reason}): the rules policy decided"


class QuietHoursChannel(Check):
    name = "quiet_hours_channel"
    label = "quiet hours"

    def record(self, channel: str, until: str) -> GuardrailCheck:
        return entry(name=self.name, verdict="fixed", before=channel, after=until, reason="deferred")

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        until = utc(c.after)
        return f"{c.before} is in quiet hours{local(s.as_of, s.ctx)}: deferred to {when(until)}{local(until, s.ctx)}"

"""Action bank channels: an open channel stays open only if the segment's bank has a template on it."""

from __future__ import annotations

from core.contracts import GuardrailCheck
from guardrails.checks.base import EligibilityCheck, Screen, entry
from guardrails.checks.words import Setting, names


class ActionBankChannels(EligibilityCheck):
    name = "action_bank_channels"
    label = "no bank channel"
    blocks = True
    code = "no_bank_channel"

    def run(self, s: Screen) -> GuardrailCheck:
        in_bank = s.ref.bank_channels(s.ctx.segment)
        s.allowed = [ch for ch in s.open_channels if ch in in_bank]
        failed = bool(s.open_channels) and not s.allowed
        return entry(
            name=self.name,
            verdict="failed" if failed else "pass",
            before=s.open_channels,
            after=s.allowed,
            reason=self.code if failed else "",
        )

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        if c.verdict == "failed":
            seg = s.segment or "the segment"
            bank = names(sorted(s.ref.bank_channels(s.segment))) if s.ref and s.segment else "none open"
            return f"no open channel ({names(c.before)}) has a template in the {seg} action bank ({bank})"
        return f"action bank has templates on {names(c.after)}" if c.after else "no open channel to check"

"""The bank pair: the proposed template must be in the segment's action bank, on the proposed channel."""

from __future__ import annotations

from core.contracts import GuardrailCheck
from guardrails.checks.base import ProposalCheck, Vetting, entry
from guardrails.checks.words import Setting


class ActionBank(ProposalCheck):
    name = "action_bank"
    label = "action bank"

    def run(self, v: Vetting) -> GuardrailCheck:
        p = v.proposal
        action = v.ref.action(v.ctx.segment, p.template_id)
        pair = [p.channel, p.template_id]
        if action is None or action.channel != p.channel:
            v.failure = "template_not_in_bank" if action is None else "channel_template_mismatch"
            return entry(name=self.name, verdict="failed", before=pair, after=None, reason=v.failure)
        v.action = action
        return entry(name=self.name, verdict="pass", before=pair, after=None, reason="")

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        pair = c.before if isinstance(c.before, list) else [None, None]
        channel, template = (pair + [None, None])[:2]
        if c.verdict == "pass":
            return f"{template} on {channel} is in the action bank"
        why = "is not in the action bank" if c.reason == "template_not_in_bank" else "is not on that channel"
        return f"proposed {template} on {channel}: {why}"

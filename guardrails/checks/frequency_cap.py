"""Frequency caps: a channel used its weekly maximum of contacts is closed."""

from __future__ import annotations

from core.contracts import GuardrailCheck
from guardrails.checks.base import EligibilityCheck, Screen, entry
from guardrails.checks.words import Setting, listed, names
from guardrails.clock import WEEK


class FrequencyCap(EligibilityCheck):
    name = "frequency_cap"
    label = "frequency cap"
    blocks = True
    code = "frequency_cap"

    def run(self, s: Screen) -> GuardrailCheck:
        limits = s.ref.channel_limits
        capped = []
        for ch in s.consented:
            limit = limits.get(ch)
            n = sum(1 for c, t in s.contacts if c == ch and abs(s.as_of - t) < WEEK)
            if limit is None or n >= limit.max_per_7d:
                capped.append(ch)
        s.open_channels = [ch for ch in s.consented if ch not in capped]
        return entry(
            name=self.name,
            verdict="failed" if s.consented and not s.open_channels else "pass",
            before=s.consented,
            after=s.open_channels,
            reason=("capped:" + ",".join(capped)) if capped else "",
        )

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        capped = ", ".join(_cap(ch, s) for ch in listed(c.reason, "capped:"))
        if c.verdict == "failed":
            return "frequency cap reached on every consented channel: " + capped
        if capped:
            return f"capped: {capped}; open: {names(c.after)}"
        if not c.after:
            return "no open channel to check"
        return f"under the frequency caps on {names(c.after)}"


def _cap(channel: str, s: Setting) -> str:
    lim = s.ref.channel_limits.get(channel) if s.ref else None
    return f"{channel} (max {lim.max_per_7d} in 7 days)" if lim else channel

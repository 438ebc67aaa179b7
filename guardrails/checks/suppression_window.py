"""The suppression window: no contact within SUPPRESS_HOURS of another, on any channel or destination."""

from __future__ import annotations

from datetime import timedelta

from core.contracts import GuardrailCheck
from guardrails.checks.base import EligibilityCheck, Screen, entry
from guardrails.checks.words import Setting, contact_channel, hours, utc, when


class SuppressionWindow(EligibilityCheck):
    name = "suppression_window"
    label = "suppression window"
    blocks = True
    code = "suppression_window"

    def run(self, s: Screen) -> GuardrailCheck:
        window = timedelta(hours=s.settings.suppress_hours)
        recent = [t for _, t in s.contacts if abs(s.as_of - t) < window]
        return entry(
            name=self.name,
            verdict="failed" if recent else "pass",
            before=max(recent).isoformat() if recent else None,
            after=None,
            reason=self.code if recent else "",
        )

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        last = utc(c.before)
        if last is None:
            if not s.guard.suppress_hours:
                return "no suppression window (SUPPRESS_HOURS=0)"
            return f"no contact in the last {hours(s.guard.suppress_hours)}"
        channel = contact_channel(s, last) or "contact"
        ago = (s.as_of - last).total_seconds() / 3600
        again = when(last + timedelta(hours=s.guard.suppress_hours))
        if ago < 0:
            return (
                f"{channel} contact at {when(last)}, {hours(-ago)} after this decision's time; "
                f"window {hours(s.guard.suppress_hours)}; eligible again {again}"
            )
        return (
            f"last {channel} {hours(ago)} ago; window {hours(s.guard.suppress_hours)}; eligible again {again}"
        )

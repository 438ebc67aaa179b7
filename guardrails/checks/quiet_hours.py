"""Quiet hours in the customer's time zone: a customer whose every open channel is quiet is deferred
to the next allowed time, not dropped."""

from __future__ import annotations

from datetime import UTC, datetime

from core.contracts import GuardrailCheck
from guardrails.checks.base import EligibilityCheck, Screen, entry
from guardrails.checks.words import Setting, listed, local, names, utc, when
from guardrails.clock import quiet_until_local, zone


class QuietHours(EligibilityCheck):
    name = "quiet_hours"
    label = "quiet hours"

    def run(self, s: Screen) -> GuardrailCheck:
        deferred: dict[str, datetime] = {}
        if s.settings.enforce_quiet_hours and s.allowed:
            tz = zone(s.ctx.timezone)
            if tz is None:
                s.reasons.append("timezone_unknown_utc")
            local_now = s.as_of.astimezone(tz or UTC)
            for ch in s.allowed:
                lim = s.ref.channel_limits[ch]
                until = quiet_until_local(local_now, tz, lim.quiet_start_hour, lim.quiet_end_hour)
                if until is not None:
                    deferred[ch] = until
        all_quiet = bool(s.allowed) and len(deferred) == len(s.allowed)
        s.deferred = deferred
        s.defer_until = min(deferred.values()) if all_quiet else None
        return entry(
            name=self.name,
            verdict="fixed" if all_quiet else "pass",
            before=None,
            after=s.defer_until.isoformat() if s.defer_until else None,
            reason=("quiet:" + ",".join(deferred)) if deferred else "",
        )

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        quiet = listed(c.reason, "quiet:")
        if c.verdict == "fixed":
            until = utc(c.after)
            return (
                f"quiet hours on every open channel ({names(quiet)}) at the decision time"
                f"{local(s.as_of, s.ctx)}; next allowed {when(until)}{local(until, s.ctx)}"
            )
        return f"quiet hours on {names(quiet)}; other channels open" if quiet else "outside quiet hours"

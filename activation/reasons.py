"""Guardrail checks in words: what the plan, `explain` and the run summary say about a decision.

Everything here is derived from a decision's GuardrailReport (the checks the guardrails logged, with
their before / after values) plus what a sentence needs to be concrete: the run's settings (window,
holdout shares), the reference data (frequency caps, quiet hours) and, where known, the customer's
context and contact history (which channel the last contact was on, the customer's time zone).

`deciding_check` names the one check that gave a decision its final status, so counts per outcome
add up to the run summary's counts (each decision counted once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.contracts import CHANNELS, ContactEvent, CustomerContext, GuardrailCheck
from core.reference import ReferenceData
from guardrails.eligibility import CHECKS

ELIGIBILITY = CHECKS  # guardrails/eligibility.py owns the names and their order
# The eligibility checks that suppress (the holdout arm holds out, quiet hours defer).
BLOCKING = ("global_suppression", "consent", "suppression_window", "frequency_cap", "action_bank_channels")
# Short labels of the checks (tables, counts per outcome).
LABELS = {
    "holdout": "holdout",
    "global_suppression": "global suppression",
    "consent": "no consent",
    "suppression_window": "suppression window",
    "frequency_cap": "frequency cap",
    "action_bank_channels": "no bank channel",
    "quiet_hours": "quiet hours",
    "quiet_hours_channel": "quiet hours",
    "action_bank": "action bank",
    "channel_allowed": "channel allowed",
    "discount_clamp": "discount clamped",
    "control_chars": "control characters",
    "message": "message checks",
    "message_rerender": "message re-rendered",
    "proposal": "no proposal",
    "fallback": "rules fallback",
    "as proposed": "as proposed",
}


@dataclass(frozen=True)
class Setting:
    """What a sentence needs besides the check: the run's settings and, when known, the customer."""

    as_of: datetime
    suppress_hours: float
    global_holdout_pct: float
    segment_holdout_pct: float
    discount_cap: float
    segment: str = ""
    ref: ReferenceData | None = None
    ctx: CustomerContext | None = None
    history: Sequence[ContactEvent] = field(default_factory=tuple)


def utc(ts: Any) -> datetime | None:
    if ts is None or ts == "":
        return None
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            return None
    if not isinstance(ts, datetime):
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def when(ts: datetime | None) -> str:
    """'2026-11-27 15:18 UTC'."""
    return f"{ts:%Y-%m-%d %H:%M} UTC" if ts else "unknown"


def hours(h: float) -> str:
    return f"{h:.1f} h" if abs(h - round(h)) > 0.05 else f"{round(h):d} h"


def _zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _local(ts: datetime | None, ctx: CustomerContext | None) -> str:
    tz = _zone(ctx.timezone) if ctx else None
    if ts is None or tz is None or ctx is None:
        return ""
    return f" ({ts.astimezone(tz):%H:%M} in {ctx.timezone})"


def _names(channels: Any) -> str:
    items = [str(c) for c in channels or []]
    return ", ".join(items) if items else "none"


def _contact_channel(s: Setting, at: datetime) -> str | None:
    """The channel of the contact at `at` (context's last contacts, then the ledger)."""
    if s.ctx is not None:
        for ch in CHANNELS:
            t = utc(getattr(s.ctx.last_contact, ch))
            if t is not None and abs((t - at).total_seconds()) < 1:
                return ch
    for e in s.history:
        t = utc(e.contacted_at)
        if t is not None and abs((t - at).total_seconds()) < 1:
            return e.channel
    return None


def _window(c: GuardrailCheck, s: Setting) -> str:
    last = utc(c.before)
    if last is None:
        if not s.suppress_hours:
            return "no suppression window (SUPPRESS_HOURS=0)"
        return f"no contact in the last {hours(s.suppress_hours)}"
    channel = _contact_channel(s, last) or "contact"
    ago = (s.as_of - last).total_seconds() / 3600
    again = when(last + timedelta(hours=s.suppress_hours))
    if ago < 0:
        return (
            f"{channel} contact at {when(last)}, {hours(-ago)} after this decision's time; "
            f"window {hours(s.suppress_hours)}; eligible again {again}"
        )
    return f"last {channel} {hours(ago)} ago; window {hours(s.suppress_hours)}; eligible again {again}"


def _cap(channel: str, s: Setting) -> str:
    lim = s.ref.channel_limits.get(channel) if s.ref else None
    return f"{channel} (max {lim.max_per_7d} in 7 days)" if lim else channel


def _frequency(c: GuardrailCheck) -> list[str]:
    return [ch for ch in c.reason.removeprefix("capped:").split(",") if ch] if c.reason else []


def _quiet(c: GuardrailCheck) -> list[str]:
    return [ch for ch in c.reason.removeprefix("quiet:").split(",") if ch] if c.reason else []


def _pct(x: Any) -> str:
    try:
        return f"{float(x):g}%"
    except (TypeError, ValueError):
        return repr(x)


def describe(c: GuardrailCheck, s: Setting) -> str:  # noqa: C901 - one sentence per check and verdict
    """One check, in words."""
    n, v = c.name, c.verdict
    if n == "holdout":
        if v == "pass":
            return "treatment arm: not held out"
        if c.reason == "holdout_global":
            return (
                f"in the global control group ({s.global_holdout_pct:g}% of all customers, drawn by a "
                "salted hash): never contacted, so lift can be measured"
            )
        seg = s.segment or "segment"
        return (
            f"in the {seg} holdout ({s.segment_holdout_pct:g}% of the segment, drawn by a salted hash): "
            "never contacted, so the segment's lift can be measured"
        )
    if n == "global_suppression":
        return (
            "on the global suppression list: never contacted" if v == "failed" else "not globally suppressed"
        )
    if n == "consent":
        if v == "failed":
            return "no consent on any channel (email, sms and push all opted out)"
        return f"consented: {_names(c.after)}"
    if n == "suppression_window":
        return _window(c, s)
    if n == "frequency_cap":
        capped = _frequency(c)
        if v == "failed":
            return "frequency cap reached on every consented channel: " + ", ".join(
                _cap(ch, s) for ch in capped
            )
        if capped:
            return f"capped: {', '.join(_cap(ch, s) for ch in capped)}; open: {_names(c.after)}"
        if not c.after:
            return "no open channel to check"
        return f"under the frequency caps on {_names(c.after)}"
    if n == "action_bank_channels":
        if v == "failed":
            seg = s.segment or "the segment"
            bank = _names(sorted(s.ref.bank_channels(s.segment))) if s.ref and s.segment else "none open"
            return f"no open channel ({_names(c.before)}) has a template in the {seg} action bank ({bank})"
        return f"action bank has templates on {_names(c.after)}" if c.after else "no open channel to check"
    if n == "quiet_hours":
        quiet = _quiet(c)
        if v == "fixed":
            until = utc(c.after)
            return (
                f"quiet hours on every open channel ({_names(quiet)}) at the decision time"
                f"{_local(s.as_of, s.ctx)}; next allowed {when(until)}{_local(until, s.ctx)}"
            )
        return f"quiet hours on {_names(quiet)}; other channels open" if quiet else "outside quiet hours"
    if n == "quiet_hours_channel":
        until = utc(c.after)
        return f"{c.before} is in quiet hours{_local(s.as_of, s.ctx)}: deferred to {when(until)}{_local(until, s.ctx)}"
    if n == "action_bank":
        pair = c.before if isinstance(c.before, list) else [None, None]
        channel, template = (pair + [None, None])[:2]
        if v == "pass":
            return f"{template} on {channel} is in the action bank"
        why = "is not in the action bank" if c.reason == "template_not_in_bank" else "is not on that channel"
        return f"proposed {template} on {channel}: {why}"
    if n == "channel_allowed":
        if v == "pass":
            return f"{c.before} is allowed now"
        return f"{c.before} is not allowed now (allowed: {_names(c.after)})"
    if n == "discount_clamp":
        if v == "pass":
            return f"discount {_pct(c.before)} within the bank's range and the {s.discount_cap:g}% cap"
        if v == "fixed":
            return f"discount {_pct(c.before)} -> {_pct(c.after)} ({c.reason.replace('_', ' ')})"
        return f"no discount fits the bank's range under the {s.discount_cap:g}% cap"
    if n == "control_chars":
        return "control characters stripped from the copy"
    if n == "message":
        if v == "pass":
            return "copy passes the message checks"
        return f"draft refused by the message checks ({c.reason})"
    if n == "message_rerender":
        if v == "fixed":
            return "copy re-rendered from the approved template"
        return f"the approved template fails the checks too ({c.reason})"
    if n == "proposal":
        return f"the policy made no proposal ({c.reason})"
    if n == "fallback":
        return f"{c.before} proposal refused ({c.reason}): the rules policy decided"
    return f"{n}: {v}" + (f" ({c.reason})" if c.reason else "")


def deciding_check(status: str, checks: Sequence[GuardrailCheck]) -> str:
    """The check that gave the decision its status (counts per outcome add up to the run's counts).
    suppressed: the first failed eligibility check; holdout: `holdout`; deferred: the quiet-hours
    check; no_action: the last failed check; send: the first fix on the way, or 'as proposed'."""
    by_name = {c.name: c for c in checks}
    if status == "holdout":
        return "holdout"
    if status == "suppressed":
        return next((c.name for c in checks if c.name in BLOCKING and c.verdict == "failed"), "unknown")
    if status == "deferred":
        return "quiet_hours_channel" if "quiet_hours_channel" in by_name else "quiet_hours"
    if status == "no_action":
        return next((c.name for c in reversed(checks) if c.verdict == "failed"), "unknown")
    return next((c.name for c in checks if c.verdict == "fixed" and c.name not in ELIGIBILITY), "as proposed")


def why_not_sent(status: str, checks: Sequence[GuardrailCheck], s: Setting) -> str:
    """A decision that sends nothing now, in one sentence ('' for a send)."""
    if status == "send":
        return ""
    if status == "deferred":
        c = next((c for c in checks if c.name == "quiet_hours_channel"), None) or next(
            (c for c in checks if c.name == "quiet_hours"), None
        )
        return describe(c, s) if c else "deferred"
    if status == "holdout":
        c = next((c for c in checks if c.name == "holdout"), None)
        return describe(c, s) if c else "held out"
    failed = [
        c for c in checks if c.verdict == "failed" and (status != "suppressed" or c.name in ELIGIBILITY)
    ]
    return "; ".join(describe(c, s) for c in failed) or status.replace("_", " ")


def checks_of(raw: str | Sequence[Mapping[str, Any]] | None) -> list[GuardrailCheck]:
    """A logged guardrail report (JSON text or a list of dicts) as checks."""
    import json

    rows = json.loads(raw) if isinstance(raw, str) else (raw or [])
    return [GuardrailCheck.model_validate(r) for r in rows]

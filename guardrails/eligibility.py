"""Step 1, before any policy or LLM call: may this customer be contacted now, and on which channels?"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.contracts import (
    CHANNELS,
    Arm,
    ContactEvent,
    CustomerContext,
    Eligibility,
    GuardrailCheck,
    GuardrailSettings,
)
from core.reference import ReferenceData
from guardrails.holdout import global_bucket, segment_bucket

WEEK = timedelta(days=7)
# The eligibility checks, in the order check_eligibility reports them (explain and the plan's
# reasons tell them apart from the guardrail steps that follow a proposal by these names).
CHECKS = (
    "holdout",
    "global_suppression",
    "consent",
    "suppression_window",
    "frequency_cap",
    "action_bank_channels",
    "quiet_hours",
)

__all__ = ["Eligibility", "check_eligibility", "contact_times", "quiet_until", "zone"]


_check = GuardrailCheck.of


def as_utc(dt: datetime) -> datetime:
    """Aware datetimes converted to UTC; naive ones are taken to be UTC already."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


def quiet_until(as_of: datetime, tz: ZoneInfo | None, start: int, end: int) -> datetime | None:
    """If `as_of` is inside the quiet hours [start, end) local time (wrapping midnight when
    start > end), the next local `end`:00 as UTC; else None."""
    return _quiet_until_local(as_of.astimezone(tz or UTC), tz, start, end)


def _quiet_until_local(local: datetime, tz: ZoneInfo | None, start: int, end: int) -> datetime | None:
    if start == end:
        return None
    h = local.hour
    if start < end:
        if not start <= h < end:
            return None
        day = local.date()
    else:
        if end <= h < start:
            return None
        day = local.date() + timedelta(days=1) if h >= start else local.date()
    return datetime.combine(day, time(end), tzinfo=tz or UTC).astimezone(UTC)


def contact_times(ctx: CustomerContext, history: Sequence[ContactEvent]) -> set[tuple[str, datetime]]:
    """(channel, UTC time) of every known contact: the ledger rows for this customer plus the
    context's last contact per channel (deduplicated)."""
    out: set[tuple[str, datetime]] = {
        (e.channel, as_utc(e.contacted_at)) for e in history if e.customer_id == ctx.customer_id
    }
    lc = ctx.last_contact
    for ch in CHANNELS:
        t = getattr(lc, ch)
        if t is not None:
            out.add((ch, as_utc(t)))
    return out


def check_eligibility(
    ctx: CustomerContext,
    history: Sequence[ContactEvent],
    *,
    as_of: datetime,
    settings: GuardrailSettings,
    ref: ReferenceData,
) -> Eligibility:
    """Holdout arm, global suppression, consent, suppression window, frequency caps, bank channels,
    quiet hours; each logged as a check. Status precedence: suppressed > holdout > deferred > send,
    so the holdout arm holds exactly the customers who would otherwise have been contacted."""
    as_of = as_utc(as_of)
    checks: list[GuardrailCheck] = []
    reasons: list[str] = []
    cid, salt = ctx.customer_id, settings.holdout_salt

    arm: Arm = "treatment"
    if global_bucket(cid, salt) < settings.global_holdout_pct * 100:
        arm, why = "holdout", "holdout_global"
    elif segment_bucket(cid, ctx.segment, salt) < settings.segment_holdout_pct * 100:
        arm, why = "holdout", "holdout_segment"
    checks.append(
        _check(
            name="holdout",
            verdict="pass" if arm == "treatment" else "failed",
            before=None,
            after=arm,
            reason="" if arm == "treatment" else why,
        )
    )

    blocked = False
    if ctx.globally_suppressed:
        blocked = True
        reasons.append("globally_suppressed")
    checks.append(
        _check(
            name="global_suppression",
            verdict="failed" if ctx.globally_suppressed else "pass",
            before=None,
            after=None,
            reason="globally_suppressed" if ctx.globally_suppressed else "",
        )
    )

    consented = [ch for ch in CHANNELS if getattr(ctx.consent, ch)]
    if not consented:
        blocked = True
        reasons.append("no_consented_channel")
    checks.append(
        _check(
            name="consent",
            verdict="pass" if consented else "failed",
            before=None,
            after=consented,
            reason="" if consented else "no_consented_channel",
        )
    )

    contacts = contact_times(ctx, history)
    window = timedelta(hours=settings.suppress_hours)
    recent = [t for _, t in contacts if abs(as_of - t) < window]
    if recent:
        blocked = True
        reasons.append("suppression_window")
    checks.append(
        _check(
            name="suppression_window",
            verdict="failed" if recent else "pass",
            before=max(recent).isoformat() if recent else None,
            after=None,
            reason="suppression_window" if recent else "",
        )
    )

    limits = ref.channel_limits
    capped = []
    for ch in consented:
        limit = limits.get(ch)
        n = sum(1 for c, t in contacts if c == ch and abs(as_of - t) < WEEK)
        if limit is None or n >= limit.max_per_7d:
            capped.append(ch)
    open_channels = [ch for ch in consented if ch not in capped]
    if consented and not open_channels:
        blocked = True
        reasons.append("frequency_cap")
    checks.append(
        _check(
            name="frequency_cap",
            verdict="failed" if consented and not open_channels else "pass",
            before=consented,
            after=open_channels,
            reason=("capped:" + ",".join(capped)) if capped else "",
        )
    )

    in_bank = ref.bank_channels(ctx.segment)
    allowed = [ch for ch in open_channels if ch in in_bank]
    if open_channels and not allowed:
        blocked = True
        reasons.append("no_bank_channel")
    checks.append(
        _check(
            name="action_bank_channels",
            verdict="failed" if open_channels and not allowed else "pass",
            before=open_channels,
            after=allowed,
            reason="no_bank_channel" if open_channels and not allowed else "",
        )
    )

    deferred: dict[str, datetime] = {}
    if settings.enforce_quiet_hours and allowed:
        tz = zone(ctx.timezone)
        if tz is None:
            reasons.append("timezone_unknown_utc")
        local = as_of.astimezone(tz or UTC)
        for ch in allowed:
            lim = limits[ch]
            until = _quiet_until_local(local, tz, lim.quiet_start_hour, lim.quiet_end_hour)
            if until is not None:
                deferred[ch] = until
    all_quiet = bool(allowed) and len(deferred) == len(allowed)
    defer_until = min(deferred.values()) if all_quiet else None
    checks.append(
        _check(
            name="quiet_hours",
            verdict="fixed" if all_quiet else "pass",
            before=None,
            after=defer_until.isoformat() if defer_until else None,
            reason=("quiet:" + ",".join(deferred)) if deferred else "",
        )
    )

    if blocked:
        status: Literal["send", "suppressed", "deferred", "holdout"] = "suppressed"
        allowed, deferred, defer_until = [], {}, None
    elif arm == "holdout":
        status = "holdout"
        reasons.append(why)
        defer_until = None
    elif all_quiet:
        status = "deferred"
        reasons.append("quiet_hours")
    else:
        status = "send"
    return Eligibility(
        status=status,
        arm=arm,
        reasons=reasons,
        allowed_channels=allowed,  # type: ignore[arg-type]
        defer_until=defer_until,
        channel_defer_until=deferred,  # type: ignore[arg-type]
        checks=checks,
    )

"""What a check's sentence needs besides the check: the run's settings and, when known, the customer;
and the small formatting helpers those sentences share (times, durations, channel lists)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.contracts import CHANNELS, ContactEvent, CustomerContext, GuardrailSettings
from core.reference import ReferenceData


@dataclass(frozen=True)
class Setting:
    """What a sentence needs besides the check: the run's settings and, when known, the customer."""

    as_of: datetime
    guard: GuardrailSettings  # what the run's guardrails enforced
    segment: str = ""
    ref: ReferenceData | None = None
    ctx: CustomerContext | None = None
    history: Sequence[ContactEvent] = field(default_factory=tuple)


def utc(ts: Any) -> datetime | None:
    """A logged timestamp (datetime or ISO text) as an aware UTC datetime; None when it is not one."""
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
    """A time to the minute in UTC, as every explanation shows it; 'unknown' for none."""
    return f"{ts:%Y-%m-%d %H:%M} UTC" if ts else "unknown"


def hours(h: float) -> str:
    return f"{h:.1f} h" if abs(h - round(h)) > 0.05 else f"{round(h):d} h"


def _zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local(ts: datetime | None, ctx: CustomerContext | None) -> str:
    """' (16:00 in Europe/Amsterdam)': `ts` on the customer's clock, when their zone is known."""
    tz = _zone(ctx.timezone) if ctx else None
    if ts is None or tz is None or ctx is None:
        return ""
    return f" ({ts.astimezone(tz):%H:%M} in {ctx.timezone})"


def names(channels: Any) -> str:
    items = [str(c) for c in channels or []]
    return ", ".join(items) if items else "none"


def listed(reason: str, prefix: str) -> list[str]:
    """The channels a reason code lists after its prefix ('capped:sms,push' -> ['sms', 'push'])."""
    return [ch for ch in reason.removeprefix(prefix).split(",") if ch] if reason else []


def pct(x: Any) -> str:
    try:
        return f"{float(x):g}%"
    except (TypeError, ValueError):
        return repr(x)


def contact_channel(s: Setting, at: datetime) -> str | None:
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

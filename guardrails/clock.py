"""Time in the customer's world: UTC instants, time zones, quiet hours and the contacts already made."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.contracts import CHANNELS, ContactEvent, CustomerContext

WEEK = timedelta(days=7)


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
    return quiet_until_local(as_of.astimezone(tz or UTC), tz, start, end)


def quiet_until_local(local: datetime, tz: ZoneInfo | None, start: int, end: int) -> datetime | None:
    """`quiet_until` for a time already on the customer's clock."""
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

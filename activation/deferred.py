"""Deferred sends: a decision deferred by quiet hours waits in ops.deferred_sends for its send-at time
(the end of the customer's quiet hours); the first live run (`activate`, `apply`, the daily DAG) at or
after that time sends it as it was decided, once eligibility holds again as of that run.

Each queued decision ends one of two ways:
- sent: handed to the delivery engine with its decision id, so ops.delivery_state (one row per
  decision and destination) makes it go out at most once per destination, whatever races or kills;
  it is sent once it has a delivery_state row, and the engine owns it from there (retries, DLQ);
- closed, with the reason: no longer eligible as of the run (consent withdrawn, global suppression,
  suppression window, frequency caps, holdout, out of its segment), superseded by a newer decision
  for the customer, or stale (the run came more than NBA_DEFERRED__MAX_LATE_HOURS after its send-at).

Quiet hours are not checked again: their end is the time the decision waited for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from activation.settings import ActivateSettings
from activation.state import now_utc
from agent.context import load_contact_history, load_contexts, reference_for
from agent.pipeline import recheck_eligibility
from core.contracts import Decision, Eligibility
from warehouse.ops_tables import utc_naive

_OPEN = (
    "q.closed_at is null and not exists (select 1 from ops.delivery_state s "
    "where s.decision_id = q.decision_id)"
)


@dataclass
class Released:
    """What a run does with the deferred decisions due at its as_of."""

    send: list[Decision] = field(default_factory=list)  # status `send`, decision id unchanged
    closed: list[tuple[Decision, str]] = field(default_factory=list)  # with the reason

    def counts(self) -> dict[str, int]:
        return {"sent": len(self.send), "closed": len(self.closed)}


def due(con: duckdb.DuckDBPyConnection, as_of: datetime) -> list[Decision]:
    """Queued deferred decisions whose send-at time has come by `as_of`, neither sent nor closed."""
    rows = con.execute(
        f"select decision_json from ops.deferred_sends q where {_OPEN} and q.send_at <= ? "
        "order by q.send_at, q.decision_id",
        [utc_naive(as_of)],
    ).fetchall()
    return [Decision.model_validate_json(r[0]) for r in rows]


def owed(con: duckdb.DuckDBPyConnection, limit: int = 20) -> dict[str, Any]:
    """`status`: the deferred decisions still owed (count, next send-at times, the first `limit`)."""
    total, first, last = con.execute(
        f"select count(*), min(send_at), max(send_at) from ops.deferred_sends q where {_OPEN}"
    ).fetchone() or (0, None, None)
    rows = con.execute(
        f"select customer_id, channel, send_at, decision_id from ops.deferred_sends q where {_OPEN} "
        "order by send_at, decision_id limit ?",
        [limit],
    ).fetchall()
    return {
        "count": int(total or 0),
        "first_send_at": first.isoformat() if first else None,
        "last_send_at": last.isoformat() if last else None,
        "rows": [
            {"customer_id": c, "channel": ch, "send_at": at.isoformat(), "decision_id": did}
            for c, ch, at, did in rows
        ],
    }


def release_due(
    con: duckdb.DuckDBPyConnection,
    settings: ActivateSettings,
    *,
    as_of: datetime,
    run_id: str,
    decided: Sequence[Decision] = (),
) -> Released:
    """The deferred decisions due at `as_of`, split into those to send now (status `send`) and those
    closed, with why; `decided` are this run's own decisions (a customer this run sends to gets no
    older deferred one as well). Writes the closures (live runs only call this)."""
    out = Released()
    waiting = due(con, as_of)
    if not waiting:
        return out
    newest: dict[str, Decision] = {}
    fresh = {d.customer_id: d for d in decided if d.status == "send"}
    stale_before = as_of - timedelta(hours=settings.deferred.max_late_hours)
    for d in waiting:
        if d.defer_until is not None and d.defer_until < stale_before:
            late = settings.deferred.max_late_hours
            out.closed.append((d, f"stale: its send-at time passed more than {late:g} h before this run"))
        elif d.customer_id in fresh:
            out.closed.append((d, f"superseded by decision {fresh[d.customer_id].decision_id} of this run"))
        else:
            older = newest.get(d.customer_id)
            if older is not None:
                out.closed.append((older, f"superseded by deferred decision {d.decision_id}"))
            newest[d.customer_id] = d
    _recheck(con, settings, list(newest.values()), as_of, out)
    close(con, out.closed, run_id=run_id)
    return out


def _recheck(
    con: duckdb.DuckDBPyConnection,
    settings: ActivateSettings,
    waiting: list[Decision],
    as_of: datetime,
    out: Released,
) -> None:
    if not waiting:
        return
    contexts = load_contexts(con, customer_ids=[d.customer_id for d in waiting])
    window = max(settings.suppress_hours, 24 * 7)
    history = load_contact_history(con, since=as_of - timedelta(hours=window))
    eligible = recheck_eligibility(
        contexts, history, guard=settings.guardrails(), ref=reference_for(con), as_of=as_of
    )
    for d in waiting:
        reason = not_eligible(d, eligible.get(d.customer_id))
        if reason:
            out.closed.append((d, reason))
        else:
            out.send.append(d.model_copy(update={"status": "send"}))


def not_eligible(d: Decision, e: Eligibility | None) -> str | None:
    """Why decision `d` may not be sent as of the recheck `e` (None: it may)."""
    if e is None:
        return "not eligible at send time: no longer in a segment"
    if e.status == "suppressed":
        return "not eligible at send time: " + ", ".join(e.reasons)
    if e.status == "holdout":
        return "not eligible at send time: holdout"
    if d.channel not in e.allowed_channels:
        # the first check that left the channel out of the channels it kept open
        by = next((c for c in e.checks if isinstance(c.after, list) and d.channel not in c.after), None)
        name = by.name if by is not None else "eligibility"
        open_ = ", ".join(map(str, by.after)) if by is not None and by.after else "none"
        return f"not eligible at send time: {name} closed {d.channel} (open: {open_})"
    return None


def close(con: duckdb.DuckDBPyConnection, closed: Sequence[tuple[Decision, str]], *, run_id: str) -> None:
    """Close queued decisions with their reasons (only those still open)."""
    if not closed:
        return
    con.executemany(
        "update ops.deferred_sends set closed_at = ?, closed_run_id = ?, close_reason = ? "
        "where decision_id = ? and closed_at is null",
        [[now_utc(), run_id, reason, d.decision_id] for d, reason in closed],
    )

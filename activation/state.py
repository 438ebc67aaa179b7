"""Reads and writes of the ops tables by the delivery engine.

Crash safety: before the first request of a destination, the rows to send are marked `pending` in
ops.sync_state in one statement (the intent); after each response, ONE transaction writes their delivery_log rows, their final sync_state
(delivered / failed / dead_letter), the contact_ledger rows of delivered ones and the dead_letter rows
of terminal ones. A kill leaves the rows without a result `pending`, which the next run sends again: at
least once from our side, exactly once at the destination thanks to its idempotency (upsert by
external id, Idempotency-Key). The ledger insert skips a (decision, destination) it already holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from activation.destinations.base import OutboundItem
from core.contracts import ContactEvent, DeliveryRecord


def utc_naive(value: datetime) -> datetime:
    """ops tables hold naive UTC timestamps."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class SyncRow:
    payload_hash: str
    last_status: str


@dataclass
class Outcome:
    """One row's result of one attempt, ready to be written."""

    item: OutboundItem
    record: DeliveryRecord
    final: bool  # False: an intermediate failed attempt (sync_state stays pending)
    contacted_at: datetime | None = None  # ledger time, when delivered


def load_sync_state(con: duckdb.DuckDBPyConnection, destination: str) -> dict[str, SyncRow]:
    rows = con.execute(
        "select record_key, payload_hash, last_status from ops.sync_state where destination = ?",
        [destination],
    ).fetchall()
    return {r[0]: SyncRow(r[1], r[2]) for r in rows}


def _register(
    con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, list[Any]], types: dict[str, Any]
) -> None:
    """Register rows as an Arrow table: one set-based statement instead of one statement per row."""
    con.register(name, pa.table({k: pa.array(v, type=types[k]) for k, v in columns.items()}))


_STR, _TS, _INT, _BOOL = pa.string(), pa.timestamp("us"), pa.int32(), pa.bool_()


def mark_pending(con: duckdb.DuckDBPyConnection, items: list[OutboundItem], at: datetime) -> None:
    """The intent, before the request: these rows may reach the destination from now on."""
    if not items:
        return
    cols: dict[str, list[Any]] = {
        "destination": [it.destination for it in items],
        "record_key": [it.record_key for it in items],
        "payload_hash": [it.payload_hash for it in items],
        "at": [at] * len(items),
    }
    _register(
        con, "_nba_pending", cols, {"destination": _STR, "record_key": _STR, "payload_hash": _STR, "at": _TS}
    )
    con.begin()
    try:
        con.execute(
            """
            insert into ops.sync_state (destination, record_key, payload_hash, last_status, last_attempt_at)
            select destination, record_key, payload_hash, 'pending', "at" from _nba_pending
            on conflict (destination, record_key) do update set
              payload_hash = excluded.payload_hash, last_status = 'pending', last_attempt_at = excluded.last_attempt_at
            """
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister("_nba_pending")


def write_outcomes(
    con: duckdb.DuckDBPyConnection, run_id: str, outcomes: list[Outcome], *, touch_state: bool
) -> None:
    """One transaction for everything one response taught us: delivery_log rows for all outcomes;
    for final ones (when touch_state) sync_state, the ledger (delivered) and the DLQ (dead_letter)."""
    if not outcomes:
        return
    events = [_contact_event(o) if touch_state else None for o in outcomes]
    cols: dict[str, list[Any]] = {
        "run_id": [run_id] * len(outcomes),
        "decision_id": [o.record.decision_id for o in outcomes],
        "customer_id": [o.item.customer_id for o in outcomes],
        "destination": [o.record.destination for o in outcomes],
        "idempotency_key": [o.record.idempotency_key for o in outcomes],
        "payload_hash": [o.record.payload_hash for o in outcomes],
        "attempt": [o.record.attempt for o in outcomes],
        "status": [o.record.status for o in outcomes],
        "destination_record_id": [o.record.destination_record_id for o in outcomes],
        "error": [o.record.error for o in outcomes],
        "at": [o.record.at for o in outcomes],
        "final": [o.final and touch_state for o in outcomes],
        "record_key": [o.item.record_key for o in outcomes],
        "item_json": [
            o.item.model_dump_json() if o.record.status == "dead_letter" else None for o in outcomes
        ],
        "channel": [e.channel if e else None for e in events],
        "contacted_at": [e.contacted_at if e else None for e in events],
        "decision_run_id": [e.run_id if e else None for e in events],
    }
    types = dict.fromkeys(cols, _STR) | {"attempt": _INT, "at": _TS, "contacted_at": _TS, "final": _BOOL}
    _register(con, "_nba_out", cols, types)
    con.begin()
    try:
        con.execute(
            """
            insert into ops.delivery_log
            select run_id, decision_id, customer_id, destination, idempotency_key, payload_hash, attempt, status,
                   destination_record_id, error, "at"
            from _nba_out
            """
        )
        finals = [o for o in outcomes if o.final and touch_state]
        if finals:  # the rows exist: mark_pending inserted them before the first request
            con.execute(
                """
                update ops.sync_state s set
                  payload_hash = o.payload_hash, last_status = o.status, last_attempt_at = o."at",
                  last_success_at = case when o.status = 'delivered' then o."at" else s.last_success_at end
                from _nba_out o
                where o.final and s.destination = o.destination and s.record_key = o.record_key
                """
            )
        if any(e is not None for e in events):
            con.execute(
                """
                insert into ops.contact_ledger
                select o.customer_id, o.channel, o.destination, o.contacted_at, o.decision_id, o.decision_run_id
                from _nba_out o
                where o.final and o.status = 'delivered' and o.channel is not null and o.contacted_at is not null
                  and not exists (select 1 from ops.contact_ledger l
                                  where l.decision_id = o.decision_id and l.destination = o.destination)
                """
            )
        if any(o.record.status == "dead_letter" for o in finals):
            con.execute(
                """
                insert into ops.dead_letter
                select run_id, decision_id, destination, idempotency_key, item_json, error, "at", null
                from _nba_out where final and status = 'dead_letter'
                """
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister("_nba_out")


def _contact_event(o: Outcome) -> ContactEvent | None:
    """The ledger row a delivered outcome stands for (validated by the contract)."""
    if not (o.final and o.record.status == "delivered" and o.item.channel and o.contacted_at is not None):
        return None
    return ContactEvent(
        customer_id=o.item.customer_id,
        channel=o.item.channel,  # type: ignore[arg-type]
        destination=o.record.destination,
        contacted_at=o.contacted_at,
        decision_id=o.record.decision_id,
        run_id=o.item.run_id,
    )


def pending_dead_letters(
    con: duckdb.DuckDBPyConnection, destinations: list[str], decision_ids: list[str] | None = None
) -> list[tuple[str, str, str]]:
    """(destination, decision_id, payload json) of dead letters not replayed yet, oldest first."""
    if not destinations:
        return []
    marks = ", ".join("?" for _ in destinations)
    sql = f"select destination, decision_id, payload from ops.dead_letter where replayed_at is null and destination in ({marks})"
    params: list[object] = list(destinations)
    if decision_ids is not None:
        if not decision_ids:
            return []
        sql += f" and decision_id in ({', '.join('?' for _ in decision_ids)})"
        params += decision_ids
    rows = con.execute(sql + ' order by "at"', params).fetchall()
    seen: set[tuple[str, str]] = set()
    out = []
    for dest, did, payload in rows:
        if (dest, did) not in seen:
            seen.add((dest, did))
            out.append((dest, did, payload))
    return out


def mark_replayed(
    con: duckdb.DuckDBPyConnection, destination: str, decision_id: str, before: datetime, at: datetime
) -> None:
    con.execute(
        "update ops.dead_letter set replayed_at = ? where destination = ? and decision_id = ? "
        'and replayed_at is null and "at" < ?',
        [at, destination, decision_id, before],
    )

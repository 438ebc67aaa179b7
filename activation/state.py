"""Reads and writes of the ops tables by the delivery engine.

Crash safety: before a request, the rows it carries are marked `pending` in ops.sync_state (the
intent); after the response, ONE transaction writes their delivery_log rows, their final sync_state
(delivered / failed / dead_letter), the contact_ledger rows of delivered ones and the dead_letter rows
of terminal ones. A kill between the two leaves `pending` rows, which the next run sends again: at
least once from our side, exactly once at the destination thanks to its idempotency (upsert by
external id, Idempotency-Key). The ledger insert skips a (decision, destination) it already holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from activation.destinations.base import OutboundItem
from agent.contracts import ContactEvent, DeliveryRecord


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


def mark_pending(con: duckdb.DuckDBPyConnection, items: list[OutboundItem], at: datetime) -> None:
    rows = [(it.destination, it.record_key, it.payload_hash, at) for it in items]
    con.begin()
    try:
        con.executemany(
            """
            insert into ops.sync_state (destination, record_key, payload_hash, last_status, last_attempt_at)
            values (?, ?, ?, 'pending', ?)
            on conflict (destination, record_key) do update set
              payload_hash = excluded.payload_hash, last_status = 'pending', last_attempt_at = excluded.last_attempt_at
            """,
            rows,
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise


def write_outcomes(
    con: duckdb.DuckDBPyConnection, run_id: str, outcomes: list[Outcome], *, touch_state: bool
) -> None:
    """One transaction for everything one response taught us."""
    if not outcomes:
        return
    log_rows = []
    for o in outcomes:
        r = o.record
        log_rows.append(
            (run_id, r.decision_id, o.item.customer_id, r.destination, r.idempotency_key, r.payload_hash,
             r.attempt, r.status, r.destination_record_id, r.error, r.at)
        )  # fmt: skip
    finals = [o for o in outcomes if o.final and touch_state]
    con.begin()
    try:
        con.executemany("insert into ops.delivery_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", log_rows)
        for o in finals:
            r = o.record
            success_at = r.at if r.status == "delivered" else None
            con.execute(
                """
                insert into ops.sync_state values (?, ?, ?, ?, ?, ?)
                on conflict (destination, record_key) do update set
                  payload_hash = excluded.payload_hash, last_status = excluded.last_status,
                  last_attempt_at = excluded.last_attempt_at,
                  last_success_at = coalesce(excluded.last_success_at, sync_state.last_success_at)
                """,
                [r.destination, o.item.record_key, r.payload_hash, r.status, r.at, success_at],
            )
            if r.status == "delivered" and o.item.channel and o.contacted_at is not None:
                ev = ContactEvent(
                    customer_id=o.item.customer_id,
                    channel=o.item.channel,  # type: ignore[arg-type]
                    destination=r.destination,
                    contacted_at=o.contacted_at,
                    decision_id=r.decision_id,
                    run_id=o.item.run_id,
                )
                con.execute(
                    """
                    insert into ops.contact_ledger
                    select ?, ?, ?, ?, ?, ?
                    where not exists (select 1 from ops.contact_ledger where decision_id = ? and destination = ?)
                    """,
                    [ev.customer_id, ev.channel, ev.destination, ev.contacted_at, ev.decision_id, ev.run_id,
                     ev.decision_id, ev.destination],
                )  # fmt: skip
            if r.status == "dead_letter":
                con.execute(
                    "insert into ops.dead_letter values (?, ?, ?, ?, ?, ?, ?, null)",
                    [
                        run_id,
                        r.decision_id,
                        r.destination,
                        r.idempotency_key,
                        o.item.model_dump_json(),
                        r.error,
                        r.at,
                    ],
                )
        con.commit()
    except BaseException:
        con.rollback()
        raise


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

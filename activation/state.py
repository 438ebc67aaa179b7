"""Reads and writes of the ops tables by the delivery engine. ops.delivery_state is the truth.

One row per (decision, destination): the item it was first sent with (payload, idempotency key,
payload hash, as JSON), its status and how many requests carried it so far:

    pending -> delivered | failed | dead_letter        (failed and pending are "outstanding")

Crash safety: before the first request of a run, the rows it will send are written `pending` in one
statement (the intent, with their payloads). After each response ONE transaction writes its
delivery_log rows, the rows' new status and attempt count, the contact_ledger rows of delivered ones
and the dead_letter rows of terminal ones. A kill leaves the rows without a result `pending`; the
next run (or `replay-dlq`) re-sends every outstanding row with its stored payload and idempotency
key: at least once from our side, exactly once at the destination thanks to its idempotency (upsert
by external id, Idempotency-Key). The ledger insert skips a (decision, destination) it already holds.

A (decision, destination) row is never re-pointed at another payload once it may have reached the
destination (pending, failed, delivered): a changed payload under that decision id is refused. Only a
dead letter (rejected, so not stored by the destination) may be replaced by a corrected payload.

ops.delivery_log is the history, one row per outcome: attempts (delivered / failed / dead_letter with
`attempt` = the request number for that idempotency key, counted across runs, so (idempotency_key,
attempt) is unique) and rows that went out in no request (`attempt` 0): dry_run, unchanged, held,
conflict, and failed rows that were never sent because their destination was blocked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import duckdb
import pyarrow as pa

from activation.destinations.base import OutboundItem
from core.contracts import ContactEvent

# core.contracts.DeliveryStatus plus the two refusals of the exactly-once rules (held, conflict).
LogStatus = Literal["delivered", "failed", "dead_letter", "unchanged", "dry_run", "held", "conflict"]
OUTSTANDING = ("pending", "failed")


def utc_naive(value: datetime) -> datetime:
    """ops tables hold naive UTC timestamps."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class StateRow:
    decision_id: str
    destination: str
    customer_id: str
    payload_hash: str
    status: str
    attempts: int
    item_json: str

    def item(self) -> OutboundItem:
        return OutboundItem.model_validate_json(self.item_json)


@dataclass
class Outcome:
    """One row's result: of one attempt (`attempt` >= 1) or of no request at all (`attempt` 0)."""

    item: OutboundItem
    status: LogStatus
    attempt: int
    final: bool  # False: an intermediate failed attempt (the row stays pending)
    at: datetime
    error: str | None = None
    record_id: str | None = None
    contacted_at: datetime | None = None  # ledger time, when delivered


_STR, _TS, _INT, _BOOL = pa.string(), pa.timestamp("us"), pa.int32(), pa.bool_()
_COLS = "decision_id, destination, customer_id, payload_hash, status, attempts, item_json"


def _register(
    con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, list[Any]], types: dict[str, Any]
) -> None:
    """Register rows as an Arrow table: one set-based statement instead of one statement per row."""
    con.register(name, pa.table({k: pa.array(v, type=types[k]) for k, v in columns.items()}))


def _transaction(con: duckdb.DuckDBPyConnection, statements: Iterable[str], view: str) -> None:
    con.begin()
    try:
        for sql in statements:
            con.execute(sql)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister(view)


def load_state(
    con: duckdb.DuckDBPyConnection, destination: str, decision_ids: list[str]
) -> dict[str, StateRow]:
    """State rows of `destination` for these decisions, plus every outstanding row of it."""
    _register(con, "_nba_ids", {"decision_id": decision_ids}, {"decision_id": _STR})
    try:
        rows = con.execute(
            f"select {_COLS} from ops.delivery_state s where destination = ? and "
            "(status in ('pending', 'failed') or decision_id in (select decision_id from _nba_ids))",
            [destination],
        ).fetchall()
    finally:
        con.unregister("_nba_ids")
    return {r[0]: StateRow(*r) for r in rows}


def outstanding(con: duckdb.DuckDBPyConnection, destinations: list[str]) -> list[StateRow]:
    """Pending and failed rows of these destinations, oldest first."""
    if not destinations:
        return []
    marks = ", ".join("?" for _ in destinations)
    rows = con.execute(
        f"select {_COLS} from ops.delivery_state where status in ('pending', 'failed') "
        f"and destination in ({marks}) order by created_at, decision_id",
        destinations,
    ).fetchall()
    return [StateRow(*r) for r in rows]


def mark_pending(
    con: duckdb.DuckDBPyConnection, items: list[OutboundItem], run_id: str, at: datetime
) -> None:
    """The intent, before the first request: these rows (with their payloads) may reach the
    destination from now on. A row already there keeps its payload and attempts, unless it was a
    dead letter being replaced by a corrected payload."""
    if not items:
        return
    cols: dict[str, list[Any]] = {
        "decision_id": [it.decision_id for it in items],
        "destination": [it.destination for it in items],
        "customer_id": [it.customer_id for it in items],
        "record_key": [it.record_key for it in items],
        "payload_hash": [it.payload_hash for it in items],
        "idempotency_key": [it.idempotency_key for it in items],
        "item_json": [it.model_dump_json() for it in items],
        "run_id": [run_id] * len(items),
        "at": [at] * len(items),
    }
    _register(con, "_nba_pending", cols, dict.fromkeys(cols, _STR) | {"at": _TS})
    replace = "s.status = 'dead_letter'"
    insert = """
        insert into ops.delivery_state (decision_id, destination, customer_id, record_key, payload_hash,
          idempotency_key, item_json, status, attempts, first_run_id, last_run_id, created_at, updated_at)
        select decision_id, destination, customer_id, record_key, payload_hash, idempotency_key, item_json,
               'pending', 0, run_id, run_id, "at", "at" from _nba_pending p
        where not exists (select 1 from ops.delivery_state s
                          where s.decision_id = p.decision_id and s.destination = p.destination)
        """
    update = f"""
        update ops.delivery_state s set
          status = 'pending', last_run_id = p.run_id, updated_at = p."at",
          payload_hash = case when {replace} then p.payload_hash else s.payload_hash end,
          idempotency_key = case when {replace} then p.idempotency_key else s.idempotency_key end,
          item_json = case when {replace} then p.item_json else s.item_json end,
          record_key = case when {replace} then p.record_key else s.record_key end
        from _nba_pending p
        where s.decision_id = p.decision_id and s.destination = p.destination and s.status <> 'delivered'
    """
    _transaction(con, [update, insert], "_nba_pending")


def write_outcomes(
    con: duckdb.DuckDBPyConnection, run_id: str, outcomes: list[Outcome], *, touch_state: bool
) -> None:
    """One transaction for everything one response taught us: delivery_log rows for all outcomes;
    when touch_state, each row's attempts and (final ones) status in delivery_state, the ledger
    (delivered) and the dead-letter queue (dead_letter)."""
    if not outcomes:
        return
    keys = [(o.item.decision_id, o.item.destination) for o in outcomes]
    if len(set(keys)) != len(keys):
        raise ValueError("one outcome per (decision, destination) per write")
    events = [_contact_event(o) if touch_state else None for o in outcomes]
    cols = _outcome_columns(run_id, outcomes, events, touch_state=touch_state)
    types = dict.fromkeys(cols, _STR) | {"attempt": _INT, "at": _TS, "contacted_at": _TS, "final": _BOOL}
    _register(con, "_nba_out", cols, types)
    _transaction(con, _outcome_statements(outcomes, events, touch_state=touch_state), "_nba_out")


def _outcome_columns(
    run_id: str, outcomes: list[Outcome], events: list[ContactEvent | None], *, touch_state: bool
) -> dict[str, list[Any]]:
    """The columns of _nba_out, one row per outcome: its log row, whether it settles the state row
    (final), its payload when it is a dead letter, and its ledger row's values when it has one."""
    return {
        "run_id": [run_id] * len(outcomes),
        "decision_id": [o.item.decision_id for o in outcomes],
        "customer_id": [o.item.customer_id for o in outcomes],
        "destination": [o.item.destination for o in outcomes],
        "idempotency_key": [o.item.idempotency_key for o in outcomes],
        "payload_hash": [o.item.payload_hash for o in outcomes],
        "attempt": [o.attempt for o in outcomes],
        "status": [o.status for o in outcomes],
        "destination_record_id": [o.record_id for o in outcomes],
        "error": [o.error for o in outcomes],
        "at": [o.at for o in outcomes],
        "final": [o.final and touch_state for o in outcomes],
        "item_json": [o.item.model_dump_json() if o.status == "dead_letter" else None for o in outcomes],
        "channel": [e.channel if e else None for e in events],
        "contacted_at": [e.contacted_at if e else None for e in events],
        "decision_run_id": [e.run_id if e else None for e in events],
    }


def _outcome_statements(
    outcomes: list[Outcome], events: list[ContactEvent | None], *, touch_state: bool
) -> list[str]:
    """The statements of write_outcomes' transaction over _nba_out, in order: the log rows always;
    the state rows, the ledger rows and the dead letters only when there is something to write."""
    statements = [
        """
        insert into ops.delivery_log (run_id, decision_id, customer_id, destination, idempotency_key,
          payload_hash, attempt, status, destination_record_id, error, "at")
        select run_id, decision_id, customer_id, destination, idempotency_key, payload_hash, attempt, status,
               destination_record_id, error, "at" from _nba_out
        """
    ]
    if touch_state:  # the rows exist: mark_pending wrote them before the first request
        statements.append(
            """
            update ops.delivery_state s set
              attempts = greatest(s.attempts, o.attempt), updated_at = o."at", last_run_id = o.run_id,
              status = case when o.final then o.status else s.status end,
              last_error = case when o.final then o.error else s.last_error end,
              delivered_at = case when o.final and o.status = 'delivered' then o."at" else s.delivered_at end
            from _nba_out o
            where s.decision_id = o.decision_id and s.destination = o.destination
            """
        )
    if any(e is not None for e in events):
        statements.append(
            """
            insert into ops.contact_ledger (customer_id, channel, destination, contacted_at, decision_id, run_id)
            select o.customer_id, o.channel, o.destination, o.contacted_at, o.decision_id, o.decision_run_id
            from _nba_out o
            where o.channel is not null
              and not exists (select 1 from ops.contact_ledger l
                              where l.decision_id = o.decision_id and l.destination = o.destination)
            """
        )
    if touch_state and any(o.final and o.status == "dead_letter" for o in outcomes):
        statements.append(
            """
            insert into ops.dead_letter (run_id, decision_id, destination, idempotency_key, payload, error, "at")
            select run_id, decision_id, destination, idempotency_key, item_json, error, "at"
            from _nba_out where final and status = 'dead_letter'
            """
        )
    return statements


def _contact_event(o: Outcome) -> ContactEvent | None:
    """The ledger row a delivered outcome stands for (validated by the contract)."""
    if not (o.final and o.status == "delivered" and o.item.channel and o.contacted_at is not None):
        return None
    return ContactEvent(
        customer_id=o.item.customer_id,
        channel=o.item.channel,  # type: ignore[arg-type]
        destination=o.item.destination,
        contacted_at=o.contacted_at,
        decision_id=o.item.decision_id,
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


def superseding_decision(con: duckdb.DuckDBPyConnection, item: OutboundItem) -> str | None:
    """A later decision for the same customer that this destination already has or will get: replaying
    `item`'s dead letter would then send the customer a second, older action."""
    row = con.execute(
        """
        select later.decision_id from ops.delivery_state later, ops.delivery_state this
        where this.decision_id = ? and this.destination = ? and later.destination = this.destination
          and later.customer_id = this.customer_id and later.decision_id <> this.decision_id
          and later.status in ('pending', 'failed', 'delivered') and later.created_at > this.created_at
        order by later.created_at desc limit 1
        """,
        [item.decision_id, item.destination],
    ).fetchall()
    return row[0][0] if row else None


def mark_replayed(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    decision_id: str,
    *,
    before: datetime,
    at: datetime,
    outcome: str,
) -> None:
    """Close the dead letters of (decision, destination) written before `before` with `outcome`
    (delivered, dead_letter again, superseded by ..., replaced by a corrected payload)."""
    con.execute(
        "update ops.dead_letter set replayed_at = ?, replay_outcome = ? where destination = ? "
        'and decision_id = ? and replayed_at is null and "at" < ?',
        [at, outcome, destination, decision_id, before],
    )

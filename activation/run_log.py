"""Every run is in ops.run_log from its first second, and a run whose process died says so.

A run (activate, plan, apply) writes its row `running` in one short transaction as soon as it holds
the warehouse lock, in its first write window, before it decides or sends anything (a run holds the
lock for its whole length and DuckDB's file only while it writes: warehouse.access.WarehouseFile). The row gets its final status from `write_run` at the end (completed, partial,
failed, blocked_by_circuit_breaker), or `error` / `refused` here when an exception stops the run.

A row still `running` whose run no longer holds the warehouse lock belongs to a process that died
(kill -9, a lost machine): the lock is a flock that the kernel drops with its holder. The next
writer (a run, `replay-dlq`) marks such rows `abandoned` in the same transaction as its own start
row, with what the dead run delivered and what it still owes, read from ops.delivery_state (the
rows it took on carry its id in `last_run_id`). Until then, `runs` and `status` show the row as
abandoned with the same counts, read the same way; after, what it owes is still read as it stands
(`still_owed`): the rows a later run or `replay-dlq` re-sent are no longer owed by it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import duckdb

from activation.settings import ActivateSettings
from core.policy_kinds import kind
from warehouse.access import WarehouseFile
from warehouse.errors import WarehouseError
from warehouse.ops_tables import ensure_ops_tables, utc_naive

RUNNING, ABANDONED = "running", "abandoned"
# statuses of runs that did not end by writing their own outcome (no outcomes to draw for them)
UNFINISHED = (RUNNING, ABANDONED, "error", "refused")
_COLUMNS = (
    "as_of", "mode", "segment", "goal", "dry_run", "discount_cap", "suppress_hours", "prompt_version",
)  # fmt: skip


def run_columns(settings: ActivateSettings, as_of: datetime | None = None) -> dict[str, Any]:
    """The run_log columns an activate run knows before it decides anything."""
    return {
        "as_of": utc_naive(as_of or settings.as_of),
        "mode": settings.mode,
        "segment": settings.segment,
        "goal": settings.goal,
        "dry_run": settings.dry_run,
        "discount_cap": settings.discount_cap,
        "suppress_hours": settings.suppress_hours,
        "prompt_version": settings.prompt_version if kind(settings.mode).prompted else None,
    }


def delivery_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, dict[str, int]]:
    """Per destination, the rows `run_id` took on as they stand: delivered, pending, failed, dead letters."""
    out: dict[str, dict[str, int]] = {}
    for dest, status, n in con.execute(
        "select destination, status, count(*) from ops.delivery_state where last_run_id = ? "
        "group by all order by all",
        [run_id],
    ).fetchall():
        out.setdefault(dest, {"delivered": 0, "pending": 0, "failed": 0, "dead_letter": 0})[status] = n
    return out


def abandoned_summary(con: duckdb.DuckDBPyConnection, run_id: str, raw: str | None) -> dict[str, Any]:
    """The summary of a dead run: what it had written at start, its decisions, and per destination
    what it delivered and what it owes (pending and failed rows are re-sent by the next live run)."""
    summary: dict[str, Any] = json.loads(raw or "{}")
    decided, sends = con.execute(
        "select count(*), count(*) filter (where status = 'send') from ops.decision_log where run_id = ?",
        [run_id],
    ).fetchone() or (0, 0)
    dests = delivery_counts(con, run_id)
    summary.update(
        decisions=int(decided),
        counts={**(summary.get("counts") or {}), "send": int(sends)},
        destinations=dests,
        delivered=sum(c["delivered"] for c in dests.values()),
        owed=sum(c["pending"] + c["failed"] for c in dests.values()),
    )
    return summary


def abandon_dead_runs(con: duckdb.DuckDBPyConnection, *, noticed_by: str) -> list[str]:
    """Mark every `running` row except `noticed_by`'s abandoned. Only a holder of the warehouse lock
    calls this, so no other run can be alive. Runs in the caller's transaction; returns the ids."""
    rows = con.execute(
        "select run_id, summary_json from ops.run_log where status = ? and run_id <> ?", [RUNNING, noticed_by]
    ).fetchall()
    now = utc_naive(datetime.now(UTC))
    for run_id, raw in rows:
        summary = abandoned_summary(con, run_id, raw)
        summary["abandoned"] = {"noticed_by": noticed_by, "noticed_at": now.isoformat() if now else None}
        last = con.execute('select max("at") from ops.delivery_log where run_id = ?', [run_id]).fetchone()
        con.execute(
            "update ops.run_log set status = ?, finished_at = ?, summary_json = ? where run_id = ?",
            [ABANDONED, last[0] if last else None, json.dumps(summary), run_id],
        )
    return [r for r, _ in rows]


def sweep_dead_runs(con: duckdb.DuckDBPyConnection, *, noticed_by: str) -> list[str]:
    """`abandon_dead_runs` in a transaction of its own (for writers that log no run row, as replay-dlq)."""
    ensure_ops_tables(con)
    con.begin()
    try:
        dead = abandon_dead_runs(con, noticed_by=noticed_by)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return dead


def start_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    started_at: datetime,
    *,
    command: str,
    applied_plan: str | None = None,
    **columns: Any,
) -> list[str]:
    """In one short transaction: mark dead runs abandoned and write this run's row `running`.
    Returns the ids of the runs it found abandoned."""
    values = {k: columns.get(k) for k in _COLUMNS}
    summary = {"run_id": run_id, "command": command, "dry_run": bool(values["dry_run"])}
    if applied_plan:
        summary["applied_plan"] = applied_plan
    con.begin()
    try:
        dead = abandon_dead_runs(con, noticed_by=run_id)
        con.execute(
            f"insert into ops.run_log (run_id, started_at, status, summary_json, {', '.join(_COLUMNS)}) "
            f"values (?, ?, ?, ?, {', '.join('?' for _ in _COLUMNS)})",
            [run_id, utc_naive(started_at), RUNNING, json.dumps(summary), *values.values()],
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return dead


def end_unfinished(con: duckdb.DuckDBPyConnection, run_id: str, error: BaseException) -> None:
    """An exception stopped the run before it wrote its status: `refused` (a refusal: bad input, the
    promotion gate) or `error`, with the error's first line. A no-op once the row has its status.
    If even this cannot be written, the row stays `running` and the next writer marks it abandoned."""
    code = getattr(error, "exit_code", 1)
    status = "refused" if code in (2, 5) else "error"
    text = str(error).strip().splitlines()
    line = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    try:
        row = con.execute(
            "select summary_json from ops.run_log where run_id = ? and status = ?", [run_id, RUNNING]
        ).fetchone()
        if row is None:
            return
        summary = {**json.loads(row[0] or "{}"), "error": line[:500]}
        con.execute(
            "update ops.run_log set status = ?, finished_at = ?, summary_json = ? where run_id = ? and status = ?",
            [status, utc_naive(datetime.now(UTC)), json.dumps(summary), run_id, RUNNING],
        )
    except duckdb.Error:
        pass


def end_unfinished_in(db: WarehouseFile, run_id: str, error: BaseException) -> None:
    """`end_unfinished` in a write window of its own; the row stays `running` if the file cannot be
    opened (the next writer marks it abandoned)."""
    try:
        with db.writing() as con:
            end_unfinished(con, run_id, error)
    except WarehouseError:
        pass


def shown_status(status: str | None, run_id: str, live_run_id: str | None) -> str | None:
    """A `running` row is abandoned unless its run holds the warehouse lock now."""
    return ABANDONED if status == RUNNING and run_id != live_run_id else status


def as_shown(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str | None, raw: str | None, live_run_id: str | None
) -> tuple[str | None, Mapping[str, Any]]:
    """(status, summary) of a run_log row as `runs` and `status` show it."""
    shown = shown_status(status, run_id, live_run_id)
    if shown == ABANDONED and status == RUNNING:
        return shown, abandoned_summary(con, run_id, raw)
    summary: dict[str, Any] = json.loads(raw or "{}")
    if shown == ABANDONED:
        summary = still_owed(con, run_id, summary)
    return shown, summary


def still_owed(con: duckdb.DuckDBPyConnection, run_id: str, summary: dict[str, Any]) -> dict[str, Any]:
    """An abandoned run's summary with what it owes as it stands now: the rows it took on that are
    still pending or failed and no later run (a live run, `replay-dlq`) has taken over. What it owed
    when it was noticed is history once those rows are re-sent; what it delivered stays as recorded."""
    now = delivery_counts(con, run_id)
    dests = {d: dict(c) for d, c in (summary.get("destinations") or {}).items()}
    for dest, counts in dests.items():
        for key in ("pending", "failed"):
            counts[key] = now.get(dest, {}).get(key, 0)
    owed = sum(int(c.get("pending") or 0) + int(c.get("failed") or 0) for c in dests.values())
    return {**summary, "destinations": dests, "owed": owed}

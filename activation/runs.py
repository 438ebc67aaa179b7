"""After every run, and the history of runs: the activation-metrics mart refreshed, a failed live run
alerted, and `nba-activate runs` / `status` read back from the ops tables.

The mart (`mart_marketing__activation_metrics`, over the ops tables) is refreshed at the end of every
run inside the run's own lock and connection, by running the model's SQL as dbt compiled it (the
manifest's `compiled_code`, when the manifest is of the model file as it is now) or, without a
usable manifest, the model file with its `ref()`s resolved to this warehouse's relations. A dbt
call per run would cost more than a rules run itself (dbt's start-up), the SQL only milliseconds
(bench/README.md). `make build` stays the full, tested build of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, StrictUndefined

from activation import deferred
from activation.alerts import ALERT_STATUSES, alert_body, post_alert
from activation.delivery_glue import failure_report
from activation.run_log import RUNNING, as_shown
from activation.run_progress import read_progress
from activation.settings import ActivateSettings
from core.errors import UserError
from warehouse import ownership, paths
from warehouse.dbt_runner import dbt_env
from warehouse.lock import Holder, WarehouseBusy, current_holder

METRICS_MART = "mart_marketing__activation_metrics"
# How long a reader (runs, status, explain) waits when it meets a run's brief write window
READ_WAIT_S = 5.0


# --- the activation-metrics mart ----------------------------------------------------------------


def _model_file(name: str) -> Path | None:
    found = sorted(paths.DBT_DIR.glob(f"models/**/{name}.sql"))
    return found[0] if found else None


def _compiled(name: str, con: duckdb.DuckDBPyConnection) -> tuple[str, str] | None:
    """(sql, source) for model `name`: dbt's compiled code when the manifest matches the model file,
    else the file rendered with ref() -> this warehouse's relation; None when there is no model."""
    model = _model_file(name)
    if model is None:
        return None
    raw = model.read_text(encoding="utf-8")
    (db,) = con.execute("select current_database()").fetchone() or ("",)
    manifest = Path(dbt_env()["DBT_TARGET_PATH"]) / "manifest.json"
    if manifest.exists():
        try:
            nodes = json.loads(manifest.read_text(encoding="utf-8")).get("nodes", {})
        except ValueError:
            nodes = {}
        node = next(
            (n for n in nodes.values() if n.get("name") == name and n.get("resource_type") == "model"), None
        )
        if node and node.get("compiled_code") and node.get("raw_code", "").strip() == raw.strip():
            return str(node["compiled_code"]).replace(
                f'"{node["database"]}".', f'"{db}".'
            ), "dbt's compiled SQL"

    def ref(*parts: str) -> str:
        return f'"{db}"."main"."{parts[-1]}"'

    def source(*_parts: str) -> str:
        raise ValueError(f"{name} reads a source directly: run make build")

    env = Environment(undefined=StrictUndefined)
    sql = env.from_string(raw).render(ref=ref, source=source, config=lambda **_k: "", var=lambda *a: a[-1])
    return sql, "the model file's SQL"


def refresh_activation_metrics(con: duckdb.DuckDBPyConnection) -> str:
    """Rebuild the mart in one transaction; returns a line saying what happened."""
    try:
        found = _compiled(METRICS_MART, con)
        if found is None:
            return f"{METRICS_MART} not refreshed: no such model"
        sql, how = found
        con.execute("begin transaction")
        try:
            con.execute(f"create or replace table main.{METRICS_MART} as {sql}")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    except (duckdb.Error, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{METRICS_MART} not refreshed ({first}); make build refreshes it"
    (n,) = con.execute(f"select count(*) from main.{METRICS_MART}").fetchone() or (0,)
    return f"{METRICS_MART} refreshed ({n} rows, {how})"


def after_run(
    con: duckdb.DuckDBPyConnection,
    settings: ActivateSettings,
    summary: Any,
    *,
    command: str,
    status: str | None = None,
    error: BaseException | None = None,
) -> list[str]:
    """Refresh the metrics mart; post an alert when a live run did not complete. Notes are added
    to `summary.notes` (a RunSummary) and returned."""
    notes = [refresh_activation_metrics(con)]
    run_id = str(summary.run_id)
    if status is None:
        row = con.execute("select status from ops.run_log where run_id = ?", [run_id]).fetchone()
        status = row[0] if row else None
    if error is not None and status in (None, "completed", RUNNING):
        status = "error"
    if not summary.dry_run and status in ALERT_STATUSES:
        lines = failure_report(con, run_id, status) if status in ("partial", "failed") else []
        if error is not None and not lines:
            lines = [f"{type(error).__name__}: {error}"]
        body = alert_body(
            run_id=run_id,
            status=status,
            command=command,
            summary=summary.model_dump(mode="json"),
            lines=lines,
        )
        notes.append(post_alert(settings.alerts, body))
    if hasattr(summary, "notes"):
        summary.notes.extend(notes)
    return notes


# --- history ---------------------------------------------------------------------------------------


def _kind(dry_run: bool, summary: Mapping[str, Any]) -> str:
    if dry_run:
        return "plan"
    return "apply" if summary.get("applied_plan") else "live"


def _total(dests: Mapping[str, Mapping[str, int]], *keys: str) -> int:
    return sum(int(c.get(k) or 0) for c in dests.values() for k in keys)


def recent_runs(
    con: duckdb.DuckDBPyConnection, limit: int = 10, live_run_id: str | None = None
) -> list[dict[str, Any]]:
    """The last `limit` runs, newest first: status, counts, rows not delivered and owed, duration.
    A `running` row other than `live_run_id` (the run holding the lock, if any) is shown abandoned."""
    rows = con.execute(
        "select run_id, started_at, finished_at, mode, segment, dry_run, status, summary_json "
        "from ops.run_log order by started_at desc limit ?",
        [limit],
    ).fetchall()
    out = []
    for run_id, started, finished, mode, segment, dry_run, logged, raw in rows:
        status, s = as_shown(con, run_id, logged, raw, live_run_id)
        dests: dict[str, dict[str, int]] = s.get("destinations") or {}
        out.append(
            {
                "run_id": run_id,
                "started_at": started.replace(tzinfo=UTC).isoformat() if started else None,
                "duration_s": round((finished - started).total_seconds(), 1)
                if started and finished
                else None,
                "kind": _kind(bool(dry_run), s),
                "mode": mode,
                "segment": segment,
                "status": status,
                "decisions": s.get("decisions", 0),
                "send": (s.get("counts") or {}).get("send", 0),
                "delivered": _total(dests, "delivered"),
                "not_delivered": _total(dests, "pending", "failed", "dead_letter", "conflict"),
                "owed": _total(dests, "pending", "failed"),
                "applied_plan": s.get("applied_plan"),
            }
        )
    return out


def owed(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Per destination: rows outstanding (pending, failed) and dead letters not replayed."""
    out: dict[str, dict[str, int]] = {}
    for dest, status, n in con.execute(
        "select destination, status, count(*) from ops.delivery_state "
        "where status in ('pending', 'failed') group by all order by all"
    ).fetchall():
        out.setdefault(dest, {})[status] = n
    for dest, n in con.execute(
        "select destination, count(distinct decision_id) from ops.dead_letter where replayed_at is null "
        "group by all order by all"
    ).fetchall():
        out.setdefault(dest, {})["dead_letter"] = n
    return out


def deferred_owed(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The deferred decisions still owed, with their send-at times (none in a warehouse built before
    the queue existed: a read-only connection cannot create it)."""
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'ops' and table_name = 'deferred_sends'"
    ).fetchone()
    return deferred.owed(con) if found and found[0] else {"count": 0, "rows": []}


def latest_unapplied_plan(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The newest completed plan (dry run) newer than the last live run, if any. Every live run
    counts, whatever its status (running, abandoned, failed): it is in the log from its start."""
    live = con.execute("select max(started_at) from ops.run_log where not dry_run").fetchone()
    since = live[0] if live and live[0] else datetime(1970, 1, 1)
    row = con.execute(
        "select run_id, started_at from ops.run_log where dry_run and status = 'completed' and started_at > ? "
        "order by started_at desc limit 1",
        [since],
    ).fetchone()
    if row is None:
        return None
    header = paths.outbox_dir() / row[0] / "plan.json"
    info: dict[str, Any] = {"run_id": row[0], "started_at": row[1].replace(tzinfo=UTC).isoformat()}
    if header.exists():
        info["valid_until"] = json.loads(header.read_text(encoding="utf-8")).get("valid_until")
    return info


# --- reading the warehouse while nobody writes it ------------------------------------------------


def holder() -> Holder | None:
    """Who holds the warehouse lock now (None when nobody does); never takes the lock."""
    return current_holder(paths.duckdb_path())


def _no_warehouse(db: Path) -> UserError:
    return UserError(f"no warehouse at {db}: make build (or make plan, which builds it first)")


def read_only(wait_s: float = READ_WAIT_S) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse (`with read_only() as con` closes it); one line when
    there is none. A run holds the file for writing only in short windows: one that is writing now
    is waited for up to `wait_s`, then named in one line (a build, which holds it throughout, is
    named after the same wait)."""
    return ownership.open_ours(_no_warehouse, read_only=True, wait_s=wait_s)


def open_ours(*, read_only: bool) -> duckdb.DuckDBPyConnection:
    """The warehouse for a command that neither builds nor decides (replay-dlq, simulate-outcomes):
    one line, with nothing created or written, when there is none, it is no DuckDB database, or it is
    not this project's."""
    return ownership.open_ours(_no_warehouse, read_only=read_only)


def warehouse_status() -> dict[str, Any]:
    """`nba-activate status`: the run going on (with its progress), the latest run, the last live
    run, what is owed, the plan waiting."""
    busy = holder()
    info: dict[str, Any] = {"busy": busy.describe() if busy else None}
    if busy:
        info["progress"] = read_progress(paths.duckdb_path(), busy.run_id)
    try:
        with read_only() as con:
            runs = recent_runs(con, 50, busy.run_id if busy else None)
            info["latest"] = runs[0] if runs else None
            info["last_live"] = next((r for r in runs if r["kind"] != "plan"), None)
            info["owed"] = owed(con)
            info["deferred"] = deferred_owed(con)
            info["plan"] = latest_unapplied_plan(con)
    except WarehouseBusy:  # held for writing longer than a reader waits (a build): say who, and stop
        if busy is None:
            raise
    return info

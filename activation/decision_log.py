"""Write-back of runs to the warehouse (ops.run_log); the decisions themselves are written by
warehouse.decision_log."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from activation.summary import RunSummary
from warehouse.decision_log import write_decisions
from warehouse.ops_tables import utc_naive

__all__ = ["write_decisions", "write_run"]


def write_run(
    con: duckdb.DuckDBPyConnection, summary: RunSummary, *, started_at: datetime, status: str
) -> None:
    con.execute(
        "insert or replace into ops.run_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            summary.run_id,
            utc_naive(started_at),
            utc_naive(datetime.now(UTC)),
            summary.as_of,
            summary.mode,
            summary.segment,
            summary.guardrails.goal,
            summary.dry_run,
            summary.guardrails.discount_cap,
            summary.guardrails.suppress_hours,
            summary.prompt_version,
            summary.model,
            status,
            summary.model_dump_json(),
        ],
    )

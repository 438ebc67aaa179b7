"""ops.decision_log: every decision (dry or live) with its guardrail report, written in one
transaction per call through Arrow (no row-by-row inserts)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from core.contracts import Decision, GuardrailReport
from warehouse.ops_tables import insert_atomically, utc_naive

# ops.decision_log's columns, in order
_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("decision_id", pa.string()),
        ("as_of", pa.timestamp("us")),
        ("customer_id", pa.string()),
        ("segment", pa.string()),
        ("goal", pa.string()),
        ("arm", pa.string()),
        ("status", pa.string()),
        ("reasons", pa.string()),
        ("channel", pa.string()),
        ("template_id", pa.string()),
        ("discount_pct", pa.float64()),
        ("proposed_discount_pct", pa.float64()),
        ("subject", pa.string()),
        ("message", pa.string()),
        ("policy", pa.string()),
        ("model", pa.string()),
        ("prompt_version", pa.string()),
        ("context_hash", pa.string()),
        ("propensity", pa.float64()),
        ("fallback_reason", pa.string()),
        ("defer_until", pa.timestamp("us")),
        ("llm_attempts", pa.int32()),
        ("prompt_tokens", pa.int32()),
        ("completion_tokens", pa.int32()),
        ("llm_latency_ms", pa.float64()),
        ("guardrail_report", pa.string()),
        ("dry_run", pa.bool_()),
        ("action_pmf", pa.string()),
    ]
)


def _decision_row(d: Decision, rep: GuardrailReport, *, dry_run: bool) -> dict[str, Any]:
    return {
        "run_id": d.run_id,
        "decision_id": d.decision_id,
        "as_of": utc_naive(d.as_of),
        "customer_id": d.customer_id,
        "segment": d.segment,
        "goal": d.goal,
        "arm": d.arm,
        "status": d.status,
        "reasons": json.dumps(d.reasons),
        "channel": d.channel,
        "template_id": d.template_id,
        "discount_pct": d.discount_pct,
        "proposed_discount_pct": d.proposed_discount_pct,
        "subject": d.subject,
        "message": d.message,
        "policy": d.policy,
        "model": d.model,
        "prompt_version": d.prompt_version,
        "context_hash": d.context_hash,
        "propensity": d.propensity,
        "fallback_reason": d.fallback_reason,
        "defer_until": utc_naive(d.defer_until),
        "llm_attempts": len(d.attempts),
        "prompt_tokens": sum(a.prompt_tokens for a in d.attempts),
        "completion_tokens": sum(a.completion_tokens for a in d.attempts),
        "llm_latency_ms": float(sum(a.latency_ms for a in d.attempts)),
        "guardrail_report": json.dumps([c.model_dump(mode="json") for c in rep.checks], default=str),
        "dry_run": dry_run,
        # a stochastic policy's distribution over the allowed actions: [[template, discount, p], ...]
        "action_pmf": json.dumps([[a.template_id, a.discount_pct, a.probability] for a in d.action_pmf])
        if d.action_pmf
        else None,
    }


def decision_rows(decided: Sequence[tuple[Decision, GuardrailReport]], *, dry_run: bool) -> pa.Table:
    rows = [_decision_row(d, rep, dry_run=dry_run) for d, rep in decided]
    return pa.Table.from_pylist(rows, schema=_SCHEMA)


def write_decisions(
    con: duckdb.DuckDBPyConnection, decided: Sequence[tuple[Decision, GuardrailReport]], *, dry_run: bool
) -> int:
    table = decision_rows(decided, dry_run=dry_run)
    written = insert_atomically(con, "ops.decision_log", table)
    if not dry_run:
        queue_deferred(con, [d for d, _ in decided])
    return written


def queue_deferred(con: duckdb.DuckDBPyConnection, decisions: Sequence[Decision]) -> int:
    """Queue a live run's deferred decisions in ops.deferred_sends with their send-at time (the end of
    the customer's quiet hours) and the whole decision, which a later run sends as it was decided.
    A decision already queued keeps its row."""
    rows = [d for d in decisions if d.status == "deferred" and d.defer_until is not None]
    if not rows:
        return 0
    table = pa.table(
        {
            "decision_id": pa.array([d.decision_id for d in rows], pa.string()),
            "customer_id": pa.array([d.customer_id for d in rows], pa.string()),
            "channel": pa.array([d.channel for d in rows], pa.string()),
            "send_at": pa.array([utc_naive(d.defer_until) for d in rows], pa.timestamp("us")),
            "decided_run_id": pa.array([d.run_id for d in rows], pa.string()),
            "decision_json": pa.array([d.model_dump_json(exclude={"attempts"}) for d in rows], pa.string()),
            "created_at": pa.array([utc_naive(datetime.now(UTC))] * len(rows), pa.timestamp("us")),
        }
    )
    con.register("_nba_deferred", table)
    try:
        con.execute(
            "insert into ops.deferred_sends by name select * from _nba_deferred n where not exists "
            "(select 1 from ops.deferred_sends q where q.decision_id = n.decision_id)"
        )
    finally:
        con.unregister("_nba_deferred")
    return len(rows)

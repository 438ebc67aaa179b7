"""Between the activate run and the delivery engine: trip the circuit breaker before a live send, hand
decisions to `deliver`, fold its per-destination counts into the run summary, and end the run with
the status its rows earned (`finish_run`: ops.run_log, then DeliveryIncomplete when rows are owed)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import duckdb

from activation.breaker import check_send_volume
from activation.decision_log import write_run
from activation.delivery import DeliverySummary, deliver, run_status
from activation.destinations import Destination
from activation.errors import DeliveryIncomplete
from activation.settings import ActivateSettings
from activation.summary import RunSummary
from core.contracts import Decision
from warehouse import paths
from warehouse.access import WarehouseFile

_COUNTS = (
    "planned",
    "retried",
    "delivered",
    "unchanged",
    "failed",
    "dead_letter",
    "conflict",
    "held",
    "dry_run",
    "requests",
    "rate_limited",
    "retries",
)
_HOW = {
    "failed": "re-sent first by the next live run (make activate DRY_RUN=0), or now by make replay-dlq, "
    "once the cause is fixed",
    "dead_letter": "rejected by the destination: fix the data or the destination's rule, then make replay-dlq",
    "conflict": "refused, not retried: a decision id is delivered with one payload, and this run decided "
    "differently under ids already sent (a second action needs a new decision id)",
}


def fold(summary: RunSummary, delivery: DeliverySummary) -> RunSummary:
    summary.destinations = {
        name: {k: int(getattr(ds, k)) for k in _COUNTS} for name, ds in delivery.destinations.items()
    }
    summary.outbox = delivery.outbox_path
    return summary


def deliver_decisions(
    db: WarehouseFile,
    decisions: Sequence[Decision],
    *,
    summary: RunSummary,
    destinations: Sequence[Destination],
    settings: ActivateSettings,
    outbox_run_dir: Path | None,
    extra_files: Mapping[str, Callable[[RunSummary], str]],
    progress: Callable[[int], None] | None,
) -> RunSummary:
    dry_run = settings.dry_run
    if not dry_run:
        with db.reading() as con:
            check_send_volume(
                con,
                summary.counts["send"],
                max_deviation_pct=settings.delivery.max_deviation_pct,
                min_history=settings.delivery.min_history,
                force=settings.force,
            )
    # The manifest is the summary itself: fill in what is known before the atomic outbox write.
    if dry_run:
        summary.outbox = str(outbox_run_dir) if outbox_run_dir else None
        summary.destinations = {d.name: {} for d in destinations}
    files = {name: render(summary) for name, render in extra_files.items()} if dry_run else None
    result = deliver(  # a live run: each batch's outcome written in a window of its own
        decisions,
        con=db,
        run_id=summary.run_id,
        dry_run=dry_run,
        outbox_dir=paths.outbox_dir(),
        destinations=destinations,
        settings=settings.delivery,
        progress=progress,
        extra_files=files,
        as_of=datetime.fromisoformat(summary.as_of),
    )
    summary = fold(summary, result)
    if dry_run and result.outbox_path:
        # Rewrite the manifest with the per-destination counts, atomically (temp file + rename).
        manifest = Path(result.outbox_path) / "manifest.json"
        tmp = manifest.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary.model_dump(mode="json"), indent=2))
        tmp.replace(manifest)
    return summary


def finish_run(con: duckdb.DuckDBPyConnection, summary: RunSummary, *, started_at: datetime) -> RunSummary:
    """Write the run's status to ops.run_log (completed, partial or failed, from its rows), then
    raise DeliveryIncomplete (what failed, how to retry) unless every row got through."""
    status = "completed" if summary.dry_run else run_status(summary.destinations)
    write_run(con, summary, started_at=started_at, status=status)
    if status != "completed":
        raise DeliveryIncomplete(status, summary=summary, lines=failure_report(con, summary.run_id, status))
    return summary


_VARYING = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|\b[0-9a-f]{10,}\b|\bC\d{5,}\b")


def failure_report(con: duckdb.DuckDBPyConnection, run_id: str, status: str) -> list[str]:
    """What a run left undelivered, per destination and kind, with the most common reason (ids and
    hashes aside) and how to retry; read back from the warehouse, so it is what the next run finds."""
    rows = con.execute(
        """
        select destination, status, error, count(*) from (
          select destination, status, last_error as error from ops.delivery_state
          where last_run_id = ? and status in ('failed', 'dead_letter')
          union all
          select destination, status, error from ops.delivery_log
          where run_id = ? and attempt = 0 and status in ('conflict', 'dead_letter')
        ) group by all order by destination, status
        """,
        [run_id, run_id],
    ).fetchall()
    groups: dict[tuple[str, str], Counter[str]] = {}
    examples: dict[str, str] = {}
    for dest, kind, error, n in rows:
        text = " ".join((error or "no reason recorded").split())
        shape = _VARYING.sub("…", text)
        groups.setdefault((dest, kind), Counter())[shape] += n
        examples.setdefault(shape, text)
    total = sum(sum(c.values()) for c in groups.values())
    lines = [f"delivery {status}: {total} row(s) not delivered (run {run_id}; ops.run_log says {status})"]
    for (dest, kind), reasons in groups.items():
        shape, _ = reasons.most_common(1)[0]
        text = examples[shape] if len(examples[shape]) <= 240 else examples[shape][:240] + "..."
        more = f" (+{len(reasons) - 1} other reasons)" if len(reasons) > 1 else ""
        lines.append(f"  {dest}: {sum(reasons.values())} {kind}: {text}{more}")
    for kind in dict.fromkeys(kind for _, kind in groups):
        lines.append(f"  {kind} rows: {_HOW[kind]}")
    lines.append("  every row's status and reason: ops.delivery_state, ops.delivery_log, ops.dead_letter")
    return lines

"""Between the activate run and the delivery engine: trip the circuit breaker before a live send,
hand decisions to `deliver`, and fold its per-destination counts into the run summary."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import duckdb

from activation.breaker import check_send_volume
from activation.delivery import DeliverySummary, deliver
from activation.destinations import Destination
from activation.settings import ActivateSettings
from activation.summary import RunSummary
from core.contracts import Decision
from warehouse import paths

_COUNTS = (
    "planned",
    "delivered",
    "unchanged",
    "failed",
    "dead_letter",
    "dry_run",
    "requests",
    "rate_limited",
    "retries",
)


def fold(summary: RunSummary, delivery: DeliverySummary) -> RunSummary:
    summary.destinations = {
        name: {k: int(getattr(ds, k)) for k in _COUNTS} for name, ds in delivery.destinations.items()
    }
    summary.outbox = delivery.outbox_path
    return summary


def deliver_decisions(
    con: duckdb.DuckDBPyConnection,
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
    result = deliver(
        decisions,
        con=con,
        run_id=summary.run_id,
        dry_run=dry_run,
        outbox_dir=paths.outbox_dir(),
        destinations=destinations,
        settings=settings.delivery,
        progress=progress,
        extra_files=files,
    )
    summary = fold(summary, result)
    if dry_run and result.outbox_path:
        # Rewrite the manifest with the per-destination counts, atomically (temp file + rename).
        manifest = Path(result.outbox_path) / "manifest.json"
        tmp = manifest.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary.model_dump(mode="json"), indent=2))
        tmp.replace(manifest)
    return summary

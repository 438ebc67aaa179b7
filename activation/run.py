"""The `activate` run: contexts -> decisions (rules or LLM, guardrailed) -> outbox or destinations ->
write-back (decision log, run log; delivery log, sync state and contact ledger by the delivery engine)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import cast

import duckdb

from activation.decision_log import write_decisions, write_run
from activation.destinations import destinations_from_env
from activation.errors import CircuitBreakerOpen
from activation.lock import warehouse_lock
from activation.settings import DeliverySettings
from activation.summary import RunSummary, guardrail_impact, summarize
from agent.context import load_contact_history, load_contexts
from agent.contracts import Mode
from agent.pipeline import RunSettings, decide
from agent.settings import LLMSettings
from warehouse import paths


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def data_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """Default as_of: the data's as_of date at 14:00 UTC (explicit, so re-runs are reproducible)."""
    row = con.execute("select max(as_of_date) from main.mart_marketing__segment_scores").fetchall()[0]
    day = row[0] if row and row[0] else datetime.now(UTC).date()
    return datetime(day.year, day.month, day.day, 14, tzinfo=UTC)


def run_activation(
    *,
    mode: str,
    segment: str,
    goal: str,
    discount_cap: float,
    suppress_hours: float,
    dry_run: bool,
    prompt_version: str = "v1",
    as_of: datetime | None = None,
    force: bool = False,
    sample: int | None = None,
    llm_settings: LLMSettings | None = None,
    progress_factory: Callable[[str, int], Callable[[int], None]] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> RunSummary:
    from activation.delivery_glue import deliver_decisions, finish_run
    from warehouse.cli import ensure_warehouse

    t0 = time.perf_counter()
    started_at = datetime.now(UTC)
    run_id = new_run_id()
    # Destination settings are checked before anything is decided or written: a missing variable
    # fails the run at once, naming it, with nothing half-done.
    destinations = destinations_from_env(
        dry_run=dry_run, timeout_s=DeliverySettings.from_env().request_timeout_s
    )
    # One writer at a time: a second run refuses (WarehouseBusy, one line naming this run) before it
    # builds, decides or writes anything.
    with warehouse_lock(paths.duckdb_path(), command="nba-activate", run_id=run_id), ExitStack() as opened:
        if con is None:
            ensure_warehouse()
            con = opened.enter_context(duckdb.connect(str(paths.duckdb_path())))  # closed before the lock
        as_of = as_of or data_as_of(con)
        settings = RunSettings(
            run_id=run_id,
            as_of=as_of,
            mode=cast(Mode, mode),  # validated by RunSettings at runtime
            segment=segment,
            goal=goal,  # type: ignore[arg-type]
            discount_cap=discount_cap,
            suppress_hours=suppress_hours,
            prompt_version=prompt_version,
        )
        contexts = load_contexts(con, segment=segment)
        if sample is not None:
            contexts = contexts[:sample]
        window = max(suppress_hours, 24 * 7)
        history = load_contact_history(con, since=settings.as_of - timedelta(hours=window))
        llm_settings = llm_settings or (LLMSettings.from_env() if mode == "llm" else None)
        progress = progress_factory("deciding", len(contexts)) if progress_factory else None
        decided, stats = decide(contexts, history, settings, llm_settings=llm_settings, progress=progress)
        decisions = [d for d, _ in decided]
        write_decisions(con, decided, dry_run=dry_run)

        summary = summarize(
            decisions,
            run_id=settings.run_id,
            mode=mode,
            segment=segment,
            goal=goal,
            dry_run=dry_run,
            as_of=settings.as_of.isoformat(),
            discount_cap=discount_cap,
            suppress_hours=suppress_hours,
            prompt_version=prompt_version if mode == "llm" else None,
            model=llm_settings.model if llm_settings else None,
            llm_calls=stats["llm_calls"],
            cache_hits=stats["cache_hits"],
        )
        impact = guardrail_impact([r for _, r in decided])
        outbox_run = paths.outbox_dir() / settings.run_id if dry_run else None
        extra = {
            "manifest.json": lambda s: json.dumps(s.model_dump(mode="json"), indent=2),
            "guardrail_impact.json": lambda _s: json.dumps(impact, indent=2),
        }
        send_progress = progress_factory("delivering", summary.counts["send"]) if progress_factory else None
        try:
            summary = deliver_decisions(
                con,
                decisions,
                summary=summary,
                destinations=destinations,
                dry_run=dry_run,
                outbox_run_dir=outbox_run,
                extra_files=extra,
                force=force,
                progress=send_progress,
            )
        except CircuitBreakerOpen:
            summary.elapsed_s = round(time.perf_counter() - t0, 2)
            write_run(con, summary, started_at=started_at, status="blocked_by_circuit_breaker")
            raise
        summary.elapsed_s = round(time.perf_counter() - t0, 2)
        return finish_run(con, summary, started_at=started_at)  # partial/failed: DeliveryIncomplete

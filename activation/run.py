"""The `activate` run: contexts -> decisions (the one pipeline, any policy) -> outbox or destinations
-> write-back (decision log, run log; delivery state, delivery log and contact ledger by the
delivery engine). One writer at a time: the run holds the warehouse lock from start to finish."""

from __future__ import annotations

import json
import secrets
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import duckdb

from activation.decision_log import write_decisions, write_run
from activation.deferred import Released, release_due
from activation.delivery_glue import deliver_decisions, finish_run
from activation.destinations import destinations_for
from activation.errors import CircuitBreakerOpen
from activation.fingerprint import warehouse_fingerprint
from activation.gate import check_promotion
from activation.plan import record_plan
from activation.progress import ProgressFactory, building_warehouse, delivery_progress
from activation.run_log import run_columns, run_recorded
from activation.runs import after_run
from activation.settings import ActivateSettings
from activation.summary import RunSummary, guardrail_impact, outcomes, summarize
from agent.context import data_as_of, load_contact_history, load_contexts, reference_for
from agent.pipeline import Pipeline
from agent.policies import LLMEndpoint, build_policy, policy_for_identity
from agent.ramp import RampPolicy
from core.policy import policy_identity
from warehouse import paths
from warehouse.build import ensure_warehouse
from warehouse.lock import warehouse_lock
from warehouse.ops_tables import ensure_ops_tables, insert_atomically
from warehouse.ownership import owned_dir

PRIMARY_METRIC = {"90d_clv": "revenue_90d", "engagement": "converted_14d"}


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def run_activation(
    settings: ActivateSettings,
    *,
    progress_factory: ProgressFactory | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> RunSummary:
    """Decide and activate; raises DeliveryIncomplete (partial/failed, with what failed and how to
    retry) when a live run leaves rows owed, WarehouseBusy when another run holds the warehouse, and
    PromotionRefused when a new policy has no eval behind it."""
    t0 = time.perf_counter()
    started_at = datetime.now(UTC)
    run_id = new_run_id()
    # Destination settings were checked when `settings` was built, before anything is decided or
    # written: a missing variable fails the run at once, naming it, with nothing half-done.
    destinations = destinations_for(settings)
    if settings.dry_run:
        owned_dir("outbox")  # where the plan goes: refused at once if the folder is not ours
    spark = None
    if settings.decide_on == "spark":  # the same Pipeline, per partition of the Spark marts
        from agent.spark.decisions import SparkDecisionStep

        spark = SparkDecisionStep(settings)  # refuses LLM mode before anything is opened or written
    # One writer at a time: a second run refuses (one line naming this run) before it builds,
    # decides or writes anything.
    with warehouse_lock(paths.duckdb_path(), command="nba-activate", run_id=run_id), ExitStack() as opened:
        if con is None:
            if spark is None:
                with building_warehouse(progress_factory is not None):
                    ensure_warehouse()
            con = opened.enter_context(duckdb.connect(str(paths.duckdb_path())))  # closed before the lock
        as_of = settings.as_of or (spark.data_as_of() if spark else data_as_of(con))
        ensure_ops_tables(con)  # the contact ledger and delivery state stay in DuckDB, also with Spark
        # in ops.run_log from here on (`running`), before the long work: activation/run_log.py
        opened.enter_context(
            run_recorded(con, run_id, started_at, command="activate", **run_columns(settings, as_of))
        )
        # what a plan (dry run) depends on, before deciding; a Spark run's marts live in Spark, so
        # its dry run is an outbox without an applicable plan
        fingerprint = warehouse_fingerprint(con) if spark is None else None
        contexts = [] if spark else load_contexts(con, segment=settings.segment)
        if settings.limit is not None:
            contexts = contexts[: settings.limit]
        window = max(settings.suppress_hours, 24 * 7)
        history = load_contact_history(con, since=as_of - timedelta(hours=window))
        ref, guard = (spark.reference() if spark else reference_for(con)), settings.guardrails()
        with LLMEndpoint(settings.llm) as endpoint:
            policy = build_policy(
                settings, guard=guard, ref=ref, endpoint=endpoint, con=con, history_before=as_of
            )
            identity = policy_identity(policy)
            gate = None
            if not settings.dry_run:  # a new model or prompt version goes live only with an eval behind it
                gate = check_promotion(
                    con, identity, primary_metric=PRIMARY_METRIC[settings.goal], force=settings.force,
                    goal=settings.goal, ramp=settings.ramp,
                )  # fmt: skip
                if gate.ramp_id:  # the candidate on a randomized share, the policy in place on the rest
                    incumbent = policy_for_identity(
                        gate.in_place, settings, guard=guard, ref=ref, endpoint=endpoint, con=con, as_of=as_of
                    )
                    policy = RampPolicy(
                        policy, incumbent, ramp_id=gate.ramp_id, share=gate.ramp_share, as_of=as_of
                    )
                    identity = policy_identity(policy)
            label = "deciding (LLM calls)" if settings.mode == "llm" else "deciding"
            progress = progress_factory(label, len(contexts)) if progress_factory else None
            pipe = Pipeline(policy, guard=guard, ref=ref, run_id=run_id, as_of=as_of)
            decided = spark.decide(pipe, history) if spark else pipe.decide(contexts, history, progress)
            stats = {"llm_calls": 0, "cache_hits": 0} | policy.stats()
        decisions = [d for d, _ in decided]
        write_decisions(con, decided, dry_run=settings.dry_run)
        if isinstance(policy, RampPolicy):
            insert_atomically(con, "ops.ramp_assignments", policy.assignment_table(run_id))
        # deferred decisions of earlier runs whose send-at time has come, eligible again: sent with these
        released = Released()
        if not settings.dry_run and spark is None:
            released = release_due(con, settings, as_of=as_of, run_id=run_id, decided=decisions)

        summary = summarize(
            decisions,
            run_id=run_id,
            mode=settings.mode,
            segment=settings.segment,
            goal=settings.goal,
            dry_run=settings.dry_run,
            as_of=as_of.isoformat(),
            discount_cap=settings.discount_cap,
            suppress_hours=settings.suppress_hours,
            global_holdout_pct=settings.global_holdout_pct,
            segment_holdout_pct=settings.segment_holdout_pct,
            prompt_version=settings.prompt_version if settings.mode == "llm" else None,
            model=next((d.model for d in decisions if d.model), None),
            llm_calls=stats["llm_calls"],
            cache_hits=stats["cache_hits"],
        )
        summary.policy_identity, summary.policy_stats = identity, stats
        summary.deferred_sends = released.counts() if not settings.dry_run else {}
        summary.promotion_gate = gate.summary() if gate else None
        summary.outcomes = outcomes(decided)
        impact = guardrail_impact(decided)
        outbox_run = paths.outbox_dir() / run_id if settings.dry_run else None
        extra = {
            "manifest.json": lambda s: json.dumps(s.model_dump(mode="json"), indent=2),
            "guardrail_impact.json": lambda _s: json.dumps(impact, indent=2),
        }
        watched, send_progress = delivery_progress(
            progress_factory, destinations, decisions, dry_run=settings.dry_run
        )
        error: BaseException | None = None
        try:
            try:
                summary = deliver_decisions(
                    con,
                    decisions + released.send,
                    summary=summary,
                    destinations=watched,
                    settings=settings,
                    outbox_run_dir=outbox_run,
                    extra_files=extra,
                    progress=send_progress,
                )
            except CircuitBreakerOpen:
                summary.elapsed_s = round(time.perf_counter() - t0, 2)
                write_run(con, summary, started_at=started_at, status="blocked_by_circuit_breaker")
                raise
            if settings.dry_run and fingerprint is not None:  # the per-row plan that `apply` sends exactly
                summary = record_plan(
                    con, summary, decided, settings=settings, fingerprint=fingerprint, ref=ref,
                    destinations=[d.name for d in destinations], contexts=contexts, history=history,
                    primary_metric=PRIMARY_METRIC[settings.goal],
                )  # fmt: skip
            summary.elapsed_s = round(time.perf_counter() - t0, 2)
            return finish_run(con, summary, started_at=started_at)  # partial/failed: DeliveryIncomplete
        except BaseException as exc:
            error = exc
            raise
        finally:  # every run: refresh the activation-metrics mart; a failed live run alerts
            after_run(con, settings, summary, command="activate", error=error)

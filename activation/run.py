"""The `activate` run: contexts -> decisions (the one pipeline, any policy) -> outbox or destinations
-> write-back (decision log, run log; delivery state, delivery log and contact ledger by the
delivery engine). One writer at a time: the run holds the warehouse lock from start to finish, but
DuckDB's file only while it writes (warehouse.access.WarehouseFile): it writes its `running` row,
reads its inputs read-only, decides with no connection open, then writes decisions, deliveries and
the run log in short windows, so `runs`, `status` and `explain` read the warehouse meanwhile. What
it is doing now is in a file beside the lock (activation/run_progress.py), for `status`."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from activation.decision_log import write_decisions, write_run
from activation.deferred import Released, release_due
from activation.delivery_glue import deliver_decisions, finish_run
from activation.destinations import destinations_for
from activation.destinations.base import Destination
from activation.errors import CircuitBreakerOpen
from activation.fingerprint import warehouse_fingerprint
from activation.gate import GateVerdict, check_promotion
from activation.plan import record_plan
from activation.progress import ProgressFactory, building_warehouse, delivery_progress
from activation.run_log import end_unfinished_in, run_columns, start_run
from activation.run_progress import RunProgress, run_progress
from activation.runs import after_run
from activation.settings import ActivateSettings
from activation.summary import RunSummary, guardrail_impact, outcomes, summarize
from agent.context import data_as_of, load_contact_history, load_contexts, reference_for
from agent.pipeline import Decided, History, Pipeline
from agent.policies import LLMEndpoint, policy_for_identity
from agent.ramp import RampPolicy
from core.contracts import CustomerContext
from core.policy import policy_identity
from core.policy_kinds import kind
from core.reference import ReferenceData
from warehouse import paths
from warehouse.access import WarehouseFile
from warehouse.build import dbt_target, ensure_warehouse
from warehouse.lock import warehouse_lock
from warehouse.ops_tables import ensure_ops_tables, insert_atomically
from warehouse.ownership import check_dir, owned_dir

if TYPE_CHECKING:
    from agent.spark.decisions import SparkDecisionStep

PRIMARY_METRIC = {"90d_clv": "revenue_90d", "engagement": "converted_14d"}


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class _Run:
    """One activate run as it goes: who decided, what, and the gate's verdict on a live run."""

    settings: ActivateSettings
    run_id: str
    started_at: datetime
    t0: float
    as_of: datetime | None = None
    pipe: Pipeline | None = None
    decided: list[Decided] = field(default_factory=list)
    identity: str = ""
    gate: GateVerdict | None = None
    stats: dict[str, int] = field(default_factory=dict)
    released: Released = field(default_factory=Released)  # earlier runs' deferred sends, due now


def run_activation(
    settings: ActivateSettings,
    *,
    progress_factory: ProgressFactory | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> RunSummary:
    """Decide and activate; raises DeliveryIncomplete (partial/failed, with what failed and how to
    retry) when a live run leaves rows owed, WarehouseBusy when another run holds the warehouse, and
    PromotionRefused when a new policy has no eval behind it."""
    run = _Run(settings, new_run_id(), datetime.now(UTC), time.perf_counter())
    # Destination settings were checked when `settings` was built, before anything is decided or
    # written: a missing variable fails the run at once, naming it, with nothing half-done.
    destinations = destinations_for(settings)
    dbt_target()  # a target dbt does not have: one line now, before the lock file is created
    if settings.dry_run:
        check_dir("outbox")  # where the plan goes: refused at once if the folder is not ours
    spark = None
    if settings.decide_on == "spark":  # the same Pipeline, per partition of the Spark marts
        from agent.spark.decisions import SparkDecisionStep

        spark = SparkDecisionStep(settings)  # refuses LLM mode before anything is opened or written
    # One writer at a time: a second run refuses (one line naming this run) before it builds,
    # decides or writes anything. The lock is held to the end; DuckDB's file only while writing.
    lock = warehouse_lock(paths.duckdb_path(), command="nba-activate", run_id=run.run_id)
    with lock:
        if settings.dry_run:
            owned_dir("outbox")  # created once the run holds the lock: a busy refusal writes nothing
        if con is None and spark is None:
            with building_warehouse(progress_factory is not None):
                ensure_warehouse()
        db = WarehouseFile(paths.duckdb_path(), con=con)
        command = "plan" if settings.dry_run else "activate"
        with run_progress(db.path, run.run_id, command=command, bars=progress_factory) as progress:
            with db.writing() as w:  # in ops.run_log (`running`) before the long work: activation/run_log.py
                run.as_of = settings.as_of or (spark.data_as_of() if spark else data_as_of(w))
                ensure_ops_tables(w)  # the contact ledger and delivery state stay in DuckDB, also with Spark
                start_run(
                    w, run.run_id, run.started_at, command="activate", **run_columns(settings, run.as_of)
                )
            try:
                return _run(run, db, spark, destinations, progress)
            except BaseException as exc:
                end_unfinished_in(db, run.run_id, exc)
                raise


def _run(
    run: _Run,
    db: WarehouseFile,
    spark: SparkDecisionStep | None,
    destinations: list[Destination],
    progress: RunProgress,
) -> RunSummary:
    """Read (read-only), decide (no connection open), then write in short windows."""
    settings = run.settings
    progress.step("reading the warehouse")
    with db.reading() as r:
        # what a plan (dry run) depends on, before deciding; a Spark run's marts live in Spark, so
        # its dry run is an outbox without an applicable plan
        fingerprint = warehouse_fingerprint(r) if spark is None else None
        contexts = [] if spark else load_contexts(r, segment=settings.segment)
        if settings.limit is not None:
            contexts = contexts[: settings.limit]
        assert run.as_of is not None
        window = max(settings.suppress_hours, 24 * 7)
        history = load_contact_history(r, since=run.as_of - timedelta(hours=window))
        ref = spark.reference() if spark else reference_for(r)
    with LLMEndpoint(settings.llm) as endpoint:
        progress.step("building the policy")  # a learned model (or an LLM prompt's ranking) may train
        _build(run, db, ref, endpoint)
        _decide(run, spark, contexts, history, progress)
    progress.step("writing the decisions")
    with db.writing() as w:  # a dry run writes everything in this one window
        write_decisions(w, run.decided, dry_run=settings.dry_run)
        policy = run.pipe.policy if run.pipe else None
        if isinstance(policy, RampPolicy):
            insert_atomically(w, "ops.ramp_assignments", policy.assignment_table(run.run_id))
        # deferred decisions of earlier runs whose send-at time has come, eligible again: sent with these
        if not settings.dry_run and spark is None:
            run.released = release_due(
                w, settings, as_of=run.as_of, run_id=run.run_id, decided=[d for d, _ in run.decided]
            )
        summary = _summary(run)
        summary.deferred_sends = run.released.counts() if not settings.dry_run else {}
        plan = None
        if settings.dry_run and fingerprint is not None:  # the per-row plan that `apply` sends exactly
            plan = {"fingerprint": fingerprint, "ref": ref, "contexts": contexts, "history": history}
        if settings.dry_run:
            progress.step("writing the plan")
            return _deliver(db, run, summary, destinations, plan, progress.factory())
    return _deliver(db, run, summary, destinations, plan, progress.factory())


def _build(run: _Run, db: WarehouseFile, ref: ReferenceData, endpoint: LLMEndpoint) -> None:
    """The run's pipeline (a live run: past the promotion gate, ramping if it says so). A policy that
    learns reads (or trains on) the warehouse read-only; the gate writes its ramp state."""
    settings, as_of = run.settings, run.as_of
    assert as_of is not None
    with db.reading() as r:
        pipe = Pipeline.from_config(
            settings, run_id=run.run_id, as_of=as_of, ref=ref, endpoint=endpoint, con=r
        )
    run.pipe, run.identity = pipe, policy_identity(pipe.policy)
    if settings.dry_run:
        return
    with db.writing() as w:  # a new model or prompt version goes live only with an eval behind it
        run.gate = gate = check_promotion(
            w, run.identity, primary_metric=PRIMARY_METRIC[settings.goal], force=settings.force,
            goal=settings.goal, ramp=settings.ramp,
        )  # fmt: skip
    if gate.ramp_id:  # the candidate on a randomized share, the policy in place on the rest
        with db.reading() as r:
            incumbent = policy_for_identity(
                gate.in_place, settings, guard=pipe.guard, ref=ref, endpoint=endpoint, con=r, as_of=as_of
            )
        ramp = RampPolicy(pipe.policy, incumbent, ramp_id=gate.ramp_id, share=gate.ramp_share, as_of=as_of)
        run.pipe, run.identity = pipe.with_policy(ramp), policy_identity(ramp)


def _decide(
    run: _Run,
    spark: SparkDecisionStep | None,
    contexts: list[CustomerContext],
    history: History,
    progress: RunProgress,
) -> None:
    """The run's pipeline decides, with no connection to the warehouse open."""
    pipe = run.pipe
    assert pipe is not None
    label = "deciding (LLM calls)" if kind(run.settings.mode).needs_endpoint else "deciding"
    advance = progress.factory()(label, len(contexts))
    run.decided = spark.decide(pipe, history) if spark else pipe.decide(contexts, history, advance)
    run.stats = {"llm_calls": 0, "cache_hits": 0} | pipe.policy.stats()


def _summary(run: _Run) -> RunSummary:
    settings, decisions = run.settings, [d for d, _ in run.decided]
    assert run.pipe is not None and run.as_of is not None
    summary = summarize(
        decisions,
        run_id=run.run_id,
        mode=settings.mode,
        segment=settings.segment,
        guardrails=run.pipe.guard,
        dry_run=settings.dry_run,
        as_of=run.as_of.isoformat(),
        prompt_version=settings.prompt_version if kind(settings.mode).prompted else None,
        model=next((d.model for d in decisions if d.model), None),
        llm_calls=run.stats["llm_calls"],
        cache_hits=run.stats["cache_hits"],
    )
    summary.policy_identity, summary.policy_stats = run.identity, run.stats
    summary.promotion_gate = run.gate.summary() if run.gate else None
    summary.outcomes = outcomes(run.decided)
    return summary


def _deliver(
    db: WarehouseFile,
    run: _Run,
    summary: RunSummary,
    destinations: list[Destination],
    plan: dict[str, Any] | None,
    progress_factory: ProgressFactory | None,
) -> RunSummary:
    """Send (or write the outbox and, for `plan`, the plan), log the run, refresh the metrics. A live
    run writes each batch's outcome in a window of its own (activation/delivery.py)."""
    settings, decisions = run.settings, [d for d, _ in run.decided] + run.released.send
    impact = guardrail_impact(run.decided)
    outbox_run = paths.outbox_dir() / run.run_id if settings.dry_run else None
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
                db, decisions, summary=summary, destinations=watched, settings=settings,
                outbox_run_dir=outbox_run, extra_files=extra, progress=send_progress,
            )  # fmt: skip
        except CircuitBreakerOpen:
            summary.elapsed_s = round(time.perf_counter() - run.t0, 2)
            with db.writing() as w:
                write_run(w, summary, started_at=run.started_at, status="blocked_by_circuit_breaker")
            raise
        with db.writing() as w:
            if plan is not None:
                summary = record_plan(
                    w, summary, run.decided, settings=settings, destinations=[d.name for d in destinations],
                    primary_metric=PRIMARY_METRIC[settings.goal], **plan,
                )  # fmt: skip
            summary.elapsed_s = round(time.perf_counter() - run.t0, 2)
            return finish_run(w, summary, started_at=run.started_at)  # partial/failed: DeliveryIncomplete
    except BaseException as exc:
        error = exc
        raise
    finally:  # every run: refresh the activation-metrics mart; a failed live run alerts
        with db.writing() as w:
            after_run(w, settings, summary, command="activate", error=error)

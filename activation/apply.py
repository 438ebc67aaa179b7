"""`apply`: send exactly a reviewed plan (a dry run's `outbox/<run_id>/plan.*`), not a new decision.

Refused, with one line and exit 2, before anything is sent or written, when the plan:
- is missing, incomplete (no plan.json) or edited (plan.jsonl's sha256 differs from the header's);
- is older than NBA_PLAN__MAX_AGE_MINUTES;
- was built for other destinations than NBA_DESTINATIONS;
- was applied already;
- was built on another warehouse state (activation.fingerprint: marts, contact ledger, delivery
  state, reference data), named in the line;
- would not be sent as planned: the delivery engine's own plan, recomputed now from the planned
  decisions, must give every destination the same rows with the same payload hashes and the same
  unchanged / held / conflict rows (this also catches a connector that builds another payload).

Then it is a live run like `activate`'s, whose decisions are the plan's (logged live under the apply's
run id, same decision ids): the promotion gate for the plan's policy, the circuit breaker, delivery,
the run log, the activation-metrics mart, an alert when rows are not delivered.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from activation.decision_log import write_decisions, write_run
from activation.deferred import Released, release_due
from activation.delivery_glue import deliver_decisions, finish_run
from activation.delivery_plan import plan_destination
from activation.destinations import destinations_for
from activation.destinations.base import Destination, make_item
from activation.errors import CircuitBreakerOpen
from activation.fingerprint import fingerprint_changes, warehouse_fingerprint
from activation.gate import RAMP_FIRST, PromotionRefused, check_promotion
from activation.plan import PLAN_HEADER, PLAN_ROWS, plan_guardrails
from activation.progress import ProgressFactory, delivery_progress
from activation.run import PRIMARY_METRIC, new_run_id
from activation.run_log import end_unfinished_in, start_run
from activation.run_progress import run_progress
from activation.runs import after_run, open_ours
from activation.settings import ActivateSettings
from activation.state import load_state, outstanding
from activation.summary import RunSummary, outcomes, summarize
from core.contracts import Decision, GuardrailCheck, GuardrailReport
from core.errors import UserError
from core.policy_kinds import kind
from warehouse import paths
from warehouse.access import WarehouseFile
from warehouse.lock import warehouse_lock
from warehouse.ops_tables import ensure_ops_tables

_SAFE_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,80}")
SENT_OPS = ("create", "update", "retry")


class PlanRefused(UserError):
    """The plan cannot be applied as it is; the message says why and what to do (make plan again)."""


@dataclass
class LoadedPlan:
    plan_id: str
    header: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def decided(self) -> list[tuple[Decision, GuardrailReport]]:
        out = []
        for r in self.rows:
            if "decision" not in r:
                continue  # a row owed by an earlier run: the engine re-sends it from the delivery state
            d = Decision.model_validate(r["decision"])
            checks = [GuardrailCheck.model_validate(c) for c in r.get("checks", [])]
            out.append(
                (d, GuardrailReport(decision_id=d.decision_id, customer_id=d.customer_id, checks=checks))
            )
        return out

    def ops(self, destination: str) -> dict[str, tuple[str, str]]:
        """decision id -> (op, payload hash) of one destination, as planned."""
        return {
            r["decision_id"]: (e["op"], e.get("payload_hash", ""))
            for r in self.rows
            for dest, e in r.get("destinations", {}).items()
            if dest == destination
        }


def load_plan(plan_id: str) -> LoadedPlan:
    if not plan_id or not _SAFE_ID.fullmatch(plan_id):
        raise PlanRefused(f"PLAN= / --plan: {plan_id!r} is not a run id (make runs lists the plans)")
    run_dir = paths.outbox_dir() / plan_id
    if not run_dir.is_dir():
        raise PlanRefused(
            f"no plan {plan_id} in {paths.outbox_dir()}: make plan writes one (make runs lists them)"
        )
    header_path, rows_path = run_dir / PLAN_HEADER, run_dir / PLAN_ROWS
    if not header_path.exists() or not rows_path.exists():
        raise PlanRefused(f"{run_dir} is not a complete plan (no {PLAN_HEADER}): make plan again")
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
        body = rows_path.read_bytes()
    except (ValueError, OSError) as exc:
        raise PlanRefused(f"plan {plan_id} cannot be read ({type(exc).__name__}): make plan again") from None
    if not isinstance(header, dict) or hashlib.sha256(body).hexdigest() != header.get("rows_sha256"):
        raise PlanRefused(f"{rows_path} changed after it was planned (sha256 differs): make plan again")
    rows = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
    return LoadedPlan(plan_id=plan_id, header=header, rows=rows)


def _check_age(plan: LoadedPlan, settings: ActivateSettings) -> None:
    created = datetime.fromisoformat(plan.header["created_at"])
    age_min = (datetime.now(UTC) - created).total_seconds() / 60
    limit = settings.plan.max_age_minutes
    if age_min > limit:
        raise PlanRefused(
            f"plan {plan.plan_id} is {_age(age_min)} old, older than its freshness limit of {_age(limit)} "
            "(NBA_PLAN__MAX_AGE_MINUTES): make plan again, review it, then apply the new one"
        )


def _age(minutes: float) -> str:
    if minutes < 1:
        return f"{minutes * 60:.1f} s"
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _check_destinations(plan: LoadedPlan, destinations: list[Destination]) -> None:
    planned, now = sorted(plan.header.get("destinations", [])), sorted(d.name for d in destinations)
    if planned != now:
        raise PlanRefused(
            f"plan {plan.plan_id} was built for {','.join(planned) or 'no destination'} and "
            f"NBA_DESTINATIONS is {','.join(now)}: set NBA_DESTINATIONS={','.join(planned)} or make plan again "
            "with the destinations to send to"
        )


def _check_state(con: duckdb.DuckDBPyConnection, plan: LoadedPlan) -> None:
    row = con.execute(
        "select run_id, status from ops.run_log where not dry_run "
        "and json_extract_string(summary_json, '$.applied_plan') = ? order by started_at limit 1",
        [plan.plan_id],
    ).fetchone()
    if row is not None:
        raise PlanRefused(
            f"plan {plan.plan_id} was applied already by run {row[0]} ({row[1]}); rows still owed are re-sent "
            "by make replay-dlq or the next live run; make plan for a new plan"
        )
    changes = fingerprint_changes(plan.header.get("fingerprint", {}), warehouse_fingerprint(con))
    if changes:
        raise PlanRefused(
            f"plan {plan.plan_id} was built on another warehouse state ({'; '.join(changes)}): make plan again"
        )


def _check_delivery(
    con: duckdb.DuckDBPyConnection,
    plan: LoadedPlan,
    decisions: list[Decision],
    destinations: list[Destination],
) -> None:
    """The engine's plan now, for the planned decisions, must be the reviewed plan, row for row."""
    backlog = outstanding(con, [d.name for d in destinations])
    sends = [d for d in decisions if d.status == "send"]
    for dest in destinations:
        items = [make_item(dest, d) for d in sends if dest.accepts(d)]
        state = load_state(con, dest.name, [it.decision_id for it in items])
        now = plan_destination(dest.name, items, state, backlog)
        got = {it.decision_id: ("send", it.payload_hash) for it in now.send}
        got |= {it.decision_id: (status, it.payload_hash) for it, status, _ in now.skipped}
        want = {
            did: ("send" if op in SENT_OPS else op, p_hash)
            for did, (op, p_hash) in plan.ops(dest.name).items()
        }
        if got != want:
            diffs = sorted(set(got) ^ set(want) | {k for k in set(got) & set(want) if got[k] != want[k]})
            first = diffs[0]
            raise PlanRefused(
                f"plan {plan.plan_id} would not be sent as planned to {dest.name}: {len(diffs)} row(s) differ "
                f"(decision {first}: planned {want.get(first, ('nothing',))[0]}, now {got.get(first, ('nothing',))[0]}): "
                "make plan again"
            )


def apply_plan(
    settings: ActivateSettings, plan_id: str, *, progress_factory: ProgressFactory | None = None
) -> RunSummary:
    """Send plan `plan_id` exactly; raises PlanRefused (exit 2), PromotionRefused (5), WarehouseBusy (4),
    CircuitBreakerOpen (1), DeliveryIncomplete (1 / 3) like a live run."""
    t0, started_at = time.perf_counter(), datetime.now(UTC)
    plan = load_plan(plan_id)
    _check_age(plan, settings)
    destinations = destinations_for(settings)
    _check_destinations(plan, destinations)
    run_id = new_run_id()
    decided = [
        (d.model_copy(update={"run_id": run_id}), rep) for d, rep in plan.decided
    ]  # the plan's decisions, logged as this live run's
    decisions = [d for d, _ in decided]
    h = plan.header
    with warehouse_lock(paths.duckdb_path(), command="nba-activate apply", run_id=run_id):
        open_ours(read_only=True).close()  # none there, truncated or not ours: one line, nothing written
        db = WarehouseFile(paths.duckdb_path())  # for writing only while it writes: activation/run.py
        try:
            with db.writing() as con:
                ensure_ops_tables(con)
                _check_state(con, plan)
                _check_delivery(con, plan, decisions, destinations)
                s, guard = h["settings"], plan_guardrails(h)
                identity = h.get("policy_identity") or s["mode"]
                gate = check_promotion(
                    con,
                    identity,
                    primary_metric=PRIMARY_METRIC[guard.goal],
                    force=settings.force,
                    preview=True,
                )
                if gate.needs_ramp and not settings.force:  # a plan is the candidate for everyone
                    raise PromotionRefused(f"refusing to apply plan {plan.plan_id}: {RAMP_FIRST}")
                _start(con, run_id, started_at, plan)  # in ops.run_log (`running`) before it writes or sends
                write_decisions(con, decided, dry_run=False)
                released = _release(con, settings, plan, run_id, decisions)
            summary = summarize(
                decisions, run_id=run_id, mode=s["mode"], segment=s["segment"], guardrails=guard,
                dry_run=False, as_of=h["as_of"],
                prompt_version=s["prompt_version"] if kind(s["mode"]).prompted else None,
                model=next((d.model for d in decisions if d.model), None),
            )  # fmt: skip
            summary.policy_identity, summary.promotion_gate = identity, gate.summary()
            summary.applied_plan, summary.outcomes = plan.plan_id, outcomes(decided)
            summary.deferred_sends = released.counts()
            sends = decisions + released.send
            with run_progress(db.path, run_id, command="apply", bars=progress_factory) as progress:
                factory = progress.factory()
                return _deliver(db, settings, summary, sends, destinations, started_at, t0, factory)
        except BaseException as exc:
            end_unfinished_in(db, run_id, exc)  # a no-op before start_run and after the final status
            raise


def _release(
    con: duckdb.DuckDBPyConnection,
    settings: ActivateSettings,
    plan: LoadedPlan,
    run_id: str,
    decisions: list[Decision],
) -> Released:
    """The deferred decisions of earlier runs due at the plan's as_of, rechecked under the plan's
    settings (activation.deferred); sent with the plan."""
    planned = {k: v for k, v in plan.header["settings"].items() if k in ActivateSettings.model_fields}
    as_of = datetime.fromisoformat(plan.header["as_of"])
    return release_due(
        con, settings.model_copy(update=planned), as_of=as_of, run_id=run_id, decided=decisions
    )


def _start(con: duckdb.DuckDBPyConnection, run_id: str, started_at: datetime, plan: LoadedPlan) -> None:
    s, guard = plan.header["settings"], plan_guardrails(plan.header)
    start_run(
        con, run_id, started_at, command="apply", applied_plan=plan.plan_id, as_of=plan.header["as_of"],
        mode=s["mode"], segment=s["segment"], goal=guard.goal, dry_run=False, discount_cap=guard.discount_cap,
        suppress_hours=guard.suppress_hours, prompt_version=s["prompt_version"] if kind(s["mode"]).prompted else None,
    )  # fmt: skip


def _deliver(
    db: WarehouseFile,
    settings: ActivateSettings,
    summary: RunSummary,
    decisions: list[Decision],
    destinations: list[Destination],
    started_at: datetime,
    t0: float,
    progress_factory: ProgressFactory | None,
) -> RunSummary:
    watched, progress = delivery_progress(progress_factory, destinations, decisions, dry_run=False)
    error: BaseException | None = None
    try:
        try:
            summary = deliver_decisions(
                db, decisions, summary=summary, destinations=watched, settings=settings,
                outbox_run_dir=None, extra_files={}, progress=progress,
            )  # fmt: skip
        except CircuitBreakerOpen:
            summary.elapsed_s = round(time.perf_counter() - t0, 2)
            with db.writing() as con:
                write_run(con, summary, started_at=started_at, status="blocked_by_circuit_breaker")
            raise
        summary.elapsed_s = round(time.perf_counter() - t0, 2)
        with db.writing() as con:
            return finish_run(con, summary, started_at=started_at)
    except BaseException as exc:
        error = exc
        raise
    finally:
        with db.writing() as con:
            after_run(con, settings, summary, command="apply", error=error)

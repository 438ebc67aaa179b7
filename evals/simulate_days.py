"""`make simulate-days DAYS=N`: the loop closes. N daily cycles on a copy of the demo world:

    decide with the learned policy (exploring)  ->  "deliver" (the contact ledger records the sends)
    ->  draw the outcomes from the generator's truth (as `make simulate-outcomes` does)
    ->  retrain on the campaign history plus the product's own logged decisions and outcomes

and, per day, the true value per contactable customer of the learned policy (as it explores, and
its greedy choice) against the rules on the same customers, and the DR estimate of the greedy
learned policy computed from the product's own log (its logged propensities) against its truth.
Everything happens in a scratch copy of the warehouse under reports/simulate-<id>/; the user's
warehouse is only read. Report: report.json and report.html (table and chart) in that folder.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import duckdb
import numpy as np
import pyarrow as pa
import typer
from pydantic import Field, computed_field

from core.cli import new_app, run, version_option
from core.config import RunConfig, settings_from
from core.contracts import CustomerContext, Decision, Goal, GuardrailSettings, Model
from core.errors import UserError, inline
from core.reference import ReferenceData

if TYPE_CHECKING:
    from agent.pipeline import Decided, History
    from evals.ope import ExpectedRewardFn

METRIC = {"90d_clv": "revenue_90d", "engagement": "converted_14d"}


class DayRow(Model):
    day: int
    as_of: datetime
    model: str
    own_touches: int  # the product's own logged sends with outcomes the model trained on
    contactable: int  # day 0's contactable customers: the fixed yardstick of every day
    learned_true: float  # per contactable customer, today's model as it explores
    greedy_true: float  # per contactable customer, today's model's best-valued action
    rules_true: float  # per contactable customer, what the rules send
    oracle_true: float
    dr_greedy: float | None = None  # DR of the greedy policy from the product's own log so far
    dr_low: float | None = None
    dr_high: float | None = None
    dr_truth: float | None = None  # the greedy policy's true value on those logged rows
    dr_rows: int = 0  # logged sends the DR estimate is computed from (they accumulate day by day)
    sends: int = 0
    sent_true: float | None = None  # per acting customer today, the true value of what was sent
    sent_rules_true: float | None = None  # the same customers, what the rules would have sent
    candidate_true: float | None = None  # the candidate on the yardstick (learned: its greedy choice)
    gate: str = "ramp"  # the ramp's state after today's outcomes: ramp, promoted, rolled_back
    ramp_decisions: int = 0
    ramp_estimate: float | None = None  # candidate - policy in place per ramp decision
    ramp_low: float | None = None
    ramp_high: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def dr_error(self) -> float | None:
        """Relative error of the DR estimate against the truth on the same rows."""
        if self.dr_greedy is None or not self.dr_truth:
            return None
        return self.dr_greedy / self.dr_truth - 1

    @computed_field  # type: ignore[prop-decorator]
    @property
    def dr_covered(self) -> bool | None:
        """Does the 95% interval contain the truth?"""
        if self.dr_low is None or self.dr_high is None or self.dr_truth is None:
            return None
        return self.dr_low <= self.dr_truth <= self.dr_high

    @computed_field  # type: ignore[prop-decorator]
    @property
    def dr_half_width(self) -> float | None:
        """Half the 95% interval's width relative to the estimate: the error this many rows allow."""
        if self.dr_low is None or self.dr_high is None or not self.dr_greedy:
            return None
        return (self.dr_high - self.dr_low) / 2 / abs(self.dr_greedy)


class Trend(Model):
    """Least-squares slope of a daily series with its 95% interval (t with n - 2 degrees of freedom)."""

    slope: float
    low: float
    high: float


def trend(values: list[float]) -> Trend | None:
    n = len(values)
    if n < 3:
        return None
    from scipy import stats

    fit = stats.linregress(np.arange(n, dtype=np.float64), np.asarray(values, dtype=np.float64))
    half = float(stats.t.ppf(0.975, n - 2)) * float(fit.stderr)
    return Trend(slope=float(fit.slope), low=float(fit.slope) - half, high=float(fit.slope) + half)


class Screen(Model):
    """The offline screen on day 0: the eval's paired DR difference candidate - rules per contactable
    customer (the gate's first step), with its truth."""

    value: float
    low: float
    high: float
    true_value: float | None = None


def _screen(scratch: Path, goal: Goal, say) -> Screen:  # type: ignore[no-untyped-def]
    """`make eval MODE=learned BASELINE=rules` on the simulation's copy of the warehouse."""
    from evals.cli import _run
    from evals.settings import EvalSettings

    saved = os.environ.get("NBA_DUCKDB_PATH")
    os.environ["NBA_DUCKDB_PATH"] = str(scratch)
    try:
        settings = settings_from(EvalSettings, mode="learned", baseline="rules", goal=goal, n_bootstrap=500)
        report, _ = _run(settings)
    finally:
        if saved is None:
            os.environ.pop("NBA_DUCKDB_PATH", None)
        else:
            os.environ["NBA_DUCKDB_PATH"] = saved
    c = next(c for c in report.comparisons if c.metric == METRIC[goal])
    say(
        f"offline screen: learned - rules {c.value:+.3f} [{c.low:+.3f}, {c.high:+.3f}] (true {c.true_value or 0:+.3f})"
    )
    return Screen(value=c.value, low=c.low, high=c.high, true_value=c.true_value)


class SimulationReport(Model):
    simulation_id: str
    created_at: datetime
    goal: Goal
    metric: str
    days: int
    seed: int = 0
    candidate: str = "learned"
    screen: Screen | None = None
    rows: list[DayRow] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def greedy_trend(self) -> Trend | None:
        """Per day, how the greedy learned policy's true value moves (the loop learns if above 0)."""
        return trend([r.greedy_true for r in self.rows])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def promoted_on(self) -> int | None:
        """The first day after whose outcomes the ramp promoted the candidate."""
        return next((r.day for r in self.rows if r.gate == "promoted"), None)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> list[str]:
        """The issue's two targets, each said plainly as met or not, with the numbers behind it."""
        first, last = self.rows[0], self.rows[-1]
        better = last.greedy_true >= first.greedy_true
        out = [
            f"greedy learned value: {first.greedy_true:.3f} on day 0 -> {last.greedy_true:.3f} on day "
            f"{last.day} (rules {last.rules_true:.3f}, oracle {last.oracle_true:.3f}; "
            f"{last.greedy_true / last.oracle_true:.1%} of the oracle): at least day 0's: "
            f"{'met' if better else 'NOT met'}"
        ]
        t = self.greedy_trend
        if t is not None:
            out.append(
                f"trend of the greedy learned value: {t.slope:+.4f} per day [{t.low:+.4f}, {t.high:+.4f}]: "
                + ("rising (the whole 95% interval above 0)" if t.low > 0 else "not shown to rise")
            )
        if self.screen is not None:
            sc = self.screen
            out.append(
                f"offline screen (eval on day 0's log): {self.candidate} - rules {sc.value:+.3f} "
                f"[{sc.low:+.3f}, {sc.high:+.3f}], true {sc.true_value or 0:+.3f}: "
                + (
                    "shown better, the ramp is a canary"
                    if sc.low >= 0
                    else "not shown better, the full sequential ramp"
                )
            )
        gate = [r for r in self.rows if r.ramp_decisions]
        if gate:
            g = gate[-1]
            out.append(
                f"ramp of {self.candidate} against rules: {g.gate} after day {g.day} "
                f"({g.ramp_decisions} ramp decisions with outcomes, candidate - rules "
                f"{g.ramp_estimate or 0:+.3f} per decision [{g.ramp_low or 0:+.3f}, {g.ramp_high or 0:+.3f}])"
            )
        dr = [r for r in self.rows if r.dr_error is not None]
        if dr:
            within = sum(abs(r.dr_error or 0) <= 0.05 for r in dr)
            covered = sum(bool(r.dr_covered) for r in dr)
            hw = last.dr_half_width or 0.0
            need = int(round(last.dr_rows * (hw / 0.05) ** 2)) if hw else 0
            out.append(
                f"DR of the greedy policy from its own log: within 5% of the truth on {within} of {len(dr)} "
                f"days, its 95% interval covers the truth on {covered} of {len(dr)}; with {last.dr_rows} "
                f"logged sends the interval is +/-{hw:.1%}, so 5% needs about {need} sends "
                f"(a single day's ~300 give about +/-{(dr[0].dr_half_width or 0):.0%})"
            )
        return out


def _truth_values(
    truth, cids: list[str], decisions: list[tuple[str, float] | None], metric: str
) -> np.ndarray:  # type: ignore[no-untyped-def]
    """True expected `metric` of each (template, discount), 0 for no action."""
    out = np.zeros(len(cids))
    acts = [(i, d) for i, d in enumerate(decisions) if d is not None]
    idx = [i for i, _ in acts]
    if idx:
        conv, rev = truth(
            np.array([cids[i] for i in idx], dtype=object),
            np.array([d[0] for _, d in acts], dtype=object),
            np.array([d[1] for _, d in acts], dtype=np.float64),
        )
        out[idx] = conv if metric == "converted_14d" else rev
    return out


def _greedy(d: Decision) -> tuple[str, float] | None:
    if d.status not in ("send", "deferred") or d.template_id is None:
        return None
    if not d.action_pmf:
        return (d.template_id, d.discount_pct)
    best = max(d.action_pmf, key=lambda a: a.probability)
    return (best.template_id, best.discount_pct)


def _action(d: Decision) -> tuple[str, float] | None:
    return (d.template_id, d.discount_pct) if d.status in ("send", "deferred") and d.template_id else None


def _own_log_dr(con: duckdb.DuckDBPyConnection, truth, metric: str, seed: int):  # type: ignore[no-untyped-def]
    """DR (per logged touch) of the greedy learned policy from the product's own log: each logged send
    with its logged propensity and distribution; the target takes the best-valued action of that
    decision's own distribution (what the learned policy would have sent without exploring). Returns
    (estimate, low, high, truth on the same rows, rows) or None before there are enough rows."""
    from evals.ope import DoublyRobust, LoggedData, TargetPolicy, true_policy_value

    rows = con.execute(
        "select d.customer_id, d.template_id, d.discount_pct, d.propensity, o.converted_14d, o.revenue_90d, "
        "d.segment, d.action_pmf from ops.decision_log d join ops.decision_outcomes o using (decision_id) "
        "where d.arm = 'treatment' and d.status = 'send' and d.template_id is not null "
        "and d.run_id like 'sim-%' and not d.dry_run"
    ).fetchall()
    if len(rows) < 50:
        return None
    table = pa.table(
        {
            "customer_id": [r[0] for r in rows],
            "template_id": [r[1] for r in rows],
            "discount_pct": [float(r[2]) for r in rows],
            "propensity": [float(r[3]) for r in rows],
            "converted_14d": [bool(r[4]) for r in rows],
            "revenue_90d": [float(r[5]) for r in rows],
            "segment": [r[6] for r in rows],
        }
    )
    data = LoggedData.from_arrow(table)
    greedy = []
    for r in rows:
        pmf = json.loads(r[7]) if r[7] else [[r[1], r[2], 1.0]]
        t, d, _ = max(pmf, key=lambda x: x[2])
        greedy.append(data.space.index(t, float(d)))
    target = TargetPolicy.deterministic(np.array(greedy, dtype=np.int64), name="greedy")
    dr = DoublyRobust(metric)  # type: ignore[arg-type]
    est = dr.estimate(data, target, n_bootstrap=500, seed=seed)
    truth_value = true_policy_value(data, target, truth, metric=metric)  # type: ignore[arg-type]
    return est.value, est.low, est.high, truth_value, len(rows)


def simulate_days(  # type: ignore[no-untyped-def]
    days: int,
    *,
    goal: Goal,
    root: Path,
    seed: int = 0,
    candidate: str = "learned",
    screen: bool = True,
    say=print,
) -> SimulationReport:
    """Run `days` daily cycles on a scratch copy of the warehouse under `root`; see the module doc."""
    from agent.context import data_as_of, load_contexts, reference_for
    from evals.truth_adapter import warehouse_truth
    from warehouse import paths
    from warehouse.ops_tables import ensure_ops_tables

    if candidate not in CANDIDATES:
        raise UserError(
            f"CANDIDATE= / --candidate: must be one of {', '.join(CANDIDATES)} (got {candidate!r})"
        )
    scratch = _scratch_copy(root)
    # the gate's first step, the offline eval on day 0's log (before this run holds the copy)
    screened = _screen(scratch, goal, say) if screen and candidate == "learned" else None
    con = duckdb.connect(str(scratch))
    ensure_ops_tables(con)
    contexts = load_contexts(con)
    ref = reference_for(con)
    as_of0 = data_as_of(con)
    truth = warehouse_truth(paths.truth_dir())
    metric = METRIC[goal]
    report = SimulationReport(
        simulation_id=root.name, created_at=datetime.now(UTC), goal=goal, metric=metric, days=days,
        seed=seed, candidate=candidate,
    )  # fmt: skip
    config = settings_from(RunConfig, mode="learned", goal=goal, global_holdout_pct=0, segment_holdout_pct=0)
    guard = config.guardrails()
    yard = _yardstick(con, contexts, config, guard, ref, truth, metric, as_of0)
    ramp = _Ramp(config, candidate=candidate, ramp_id=f"sim-{seed}-{candidate}")
    if screened is not None:
        report.screen, ramp.shown_better = screened, screened.low >= 0

    for day in range(days + 1):
        as_of = as_of0 + timedelta(days=day)
        today = _decide_day(con, contexts, yard, ramp, config, guard, ref, day=day, as_of=as_of)
        row = _day_row(con, truth, metric, yard, today, day)
        _close_day(con, row, today, ramp, truth, metric, seed=seed, day=day, days=days)
        report.rows.append(row)
        say(_line(row, metric))
    con.close()
    return report


def _scratch_copy(root: Path) -> Path:
    """The simulation's own copy of the warehouse under `root` (the user's is only read), and its
    models there too. Returns the copy's path."""
    from warehouse.build import ensure_warehouse

    source = ensure_warehouse()
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / "warehouse.duckdb"
    shutil.copy(source, scratch)
    os.environ["NBA_MODELS_DIR"] = str(root / "models")  # the simulation's models stay with it
    return scratch


@dataclass(frozen=True)
class _Yardstick:
    """The fixed yardstick: day 0's contactable customers under day 0's eligibility. Every day's model
    is scored on them, so days compare like with like (the customers contacted today are capped
    tomorrow, which would otherwise change who is measured)."""

    as_of: datetime  # day 0
    history: History  # day 0's contact history
    contexts: list[CustomerContext]
    cids: list[str]
    best: np.ndarray  # the oracle's true value per customer
    rules_true: float  # per contactable customer, what the rules send on day 0


def _yardstick(
    con: duckdb.DuckDBPyConnection,
    contexts: list[CustomerContext],
    config: RunConfig,
    guard: GuardrailSettings,
    ref: ReferenceData,
    truth: ExpectedRewardFn,
    metric: str,
    as_of0: datetime,
) -> _Yardstick:
    """Day 0's contactable customers (those the rules act on), their oracle and the rules' value."""
    from agent.context import load_contact_history
    from agent.pipeline import decide

    history0 = load_contact_history(con, since=as_of0 - timedelta(days=7))
    rules0, _ = decide(contexts, history0, config, run_id="sim-rules", as_of=as_of0, ref=ref, mode="rules")
    fixed = [i for i, (d, _) in enumerate(rules0) if d.status in ("send", "deferred")]
    cids = [contexts[i].customer_id for i in fixed]
    best = _oracle(contexts, fixed, history0, guard, ref, truth, metric, as_of0)
    rules_true = float(_truth_values(truth, cids, [_action(rules0[i][0]) for i in fixed], metric).mean())
    fixed_contexts = [contexts[i] for i in fixed]
    return _Yardstick(as_of0, history0, fixed_contexts, cids, best, rules_true)


@dataclass(frozen=True)
class _Today:
    """One day's decisions: what the ramp sent, today's model and the candidate on the yardstick, and
    what the rules would send each customer today."""

    as_of: datetime
    sent: list[Decided]
    model: list[Decision]  # today's learned model on the yardstick
    candidate: list[Decision]  # the candidate on the yardstick (learned: the same)
    rules: dict[str, tuple[str, float] | None]


def _decide_day(
    con: duckdb.DuckDBPyConnection,
    contexts: list[CustomerContext],
    yard: _Yardstick,
    ramp: _Ramp,
    config: RunConfig,
    guard: GuardrailSettings,
    ref: ReferenceData,
    *,
    day: int,
    as_of: datetime,
) -> _Today:
    """Today's model (trained on everything before today), what the ramp sends with it, today's model
    and the candidate on the fixed yardstick, and what the rules would send today."""
    from agent.context import load_contact_history
    from agent.pipeline import Pipeline
    from agent.policies import RulesPolicy, build_policy

    as_of0, history0, fixed_contexts = yard.as_of, yard.history, yard.contexts
    history = load_contact_history(con, since=as_of - timedelta(days=7))
    learned = build_policy(config, guard=guard, ref=ref, mode="learned", con=con, history_before=as_of)
    sent = ramp.decide(learned, contexts, history, guard=guard, ref=ref, run_id=f"sim-{day:02d}", as_of=as_of)
    # today's model (trained on everything before today) on the fixed yardstick
    sd = [d for d, _ in Pipeline(learned, guard=guard, ref=ref, run_id="sim-eval", as_of=as_of0).decide(
        fixed_contexts, history0
    )]  # fmt: skip
    cand = sd if ramp.candidate == "learned" else [d for d, _ in Pipeline(
        ramp.candidate_policy(learned, guard, ref, as_of), guard=guard, ref=ref, run_id="sim-cand", as_of=as_of0
    ).decide(fixed_contexts, history0)]  # fmt: skip
    rules_today = {
        d.customer_id: _action(d)
        for d, _ in Pipeline(RulesPolicy(guard, ref), guard=guard, ref=ref, run_id="sim-r", as_of=as_of).decide(
            contexts, history
        )
    }  # fmt: skip
    return _Today(as_of, sent, sd, cand, rules_today)


def _day_row(
    con: duckdb.DuckDBPyConnection,
    truth: ExpectedRewardFn,
    metric: str,
    yard: _Yardstick,
    today: _Today,
    day: int,
) -> DayRow:
    """The day's true values: today's model (as it explores and greedy), the candidate, the rules and
    the oracle on the yardstick, and what was sent against what the rules would have sent there."""
    cids, sd, cand, rules_today = yard.cids, today.model, today.candidate, today.rules
    acting = [d for d, _ in today.sent if _action(d) is not None]
    return DayRow(
        day=day,
        as_of=today.as_of,
        model=next((d.model for d in sd if d.model), "-"),
        own_touches=_own_touches(con),
        contactable=len(cids),
        learned_true=float(_truth_values(truth, cids, [_action(d) for d in sd], metric).mean()),
        greedy_true=float(_truth_values(truth, cids, [_greedy(d) for d in sd], metric).mean()),
        rules_true=yard.rules_true,
        oracle_true=float(yard.best.mean()),
        sent_true=float(
            _truth_values(truth, [d.customer_id for d in acting], [_action(d) for d in acting], metric).mean()
        )
        if acting
        else None,
        sent_rules_true=float(
            _truth_values(
                truth, [d.customer_id for d in acting], [rules_today.get(d.customer_id) for d in acting], metric
            ).mean()
        )
        if acting
        else None,
        candidate_true=float(_truth_values(truth, cids, [_action(d) for d in cand], metric).mean()),
    )  # fmt: skip


def _close_day(
    con: duckdb.DuckDBPyConnection,
    row: DayRow,
    today: _Today,
    ramp: _Ramp,
    truth: ExpectedRewardFn,
    metric: str,
    *,
    seed: int,
    day: int,
    days: int,
) -> None:
    """The DR estimate from the product's own log so far; then, except on the last day, today's sends
    delivered, their outcomes drawn and the ramp's sequential test on them; the gate's state."""
    dr = _own_log_dr(con, truth, metric, seed + day)
    if dr is not None:
        row.dr_greedy, row.dr_low, row.dr_high, row.dr_truth, row.dr_rows = dr
    if day < days:  # deliver today's sends (the ledger), then their outcomes are observed
        row.sends = _deliver(con, today.sent, today.as_of, f"sim-{day:02d}", seed + day, ramp)
        v = ramp.update(con)
        if v is not None:
            row.gate, row.ramp_decisions = v.state, v.decisions
            row.ramp_estimate, row.ramp_low, row.ramp_high = v.estimate, v.low, v.high
    row.gate = ramp.state if not row.ramp_decisions else row.gate


CANDIDATES = ("learned", "degraded")
DEGRADED_SHARE = 0.25  # the degraded candidate: uniform random on this share of decisions, rules elsewhere


class _Ramp:
    """The simulation's gate: the candidate ramps against the rules until the sequential test on the
    ramp's own outcomes promotes it (it then decides for everyone) or rolls it back (rules again)."""

    def __init__(self, config: RunConfig, *, candidate: str, ramp_id: str) -> None:
        self.config, self.candidate, self.ramp_id = config, candidate, ramp_id
        self.state = "ramp"
        self.policy: Any = None
        self.shown_better = False  # the offline screen showed it better: the ramp is a canary

    def candidate_policy(self, learned, guard, ref, as_of):  # type: ignore[no-untyped-def]
        """Today's candidate: the learned policy, or the degraded one (uniform random on a share)."""
        from agent.policies import RandomPolicy, RulesPolicy
        from agent.ramp import RampPolicy

        if self.candidate == "learned":
            return learned
        return RampPolicy(
            RandomPolicy(guard, ref),
            RulesPolicy(guard, ref),
            ramp_id="degraded",
            share=DEGRADED_SHARE,
            as_of=as_of,
        )

    def decide(self, learned, contexts, history, *, guard, ref, run_id, as_of):  # type: ignore[no-untyped-def]
        from agent.pipeline import Pipeline
        from agent.policies import RulesPolicy
        from agent.ramp import RampPolicy

        rules = RulesPolicy(guard, ref)
        if self.state == "rolled_back":
            policy: Any = rules
        elif self.state == "promoted":
            policy = self.candidate_policy(learned, guard, ref, as_of)
        else:
            policy = RampPolicy(
                self.candidate_policy(learned, guard, ref, as_of), rules, ramp_id=self.ramp_id,
                share=self.config.ramp.share, as_of=as_of,
            )  # fmt: skip
        self.policy = policy
        return Pipeline(policy, guard=guard, ref=ref, run_id=run_id, as_of=as_of).decide(contexts, history)

    def update(self, con):  # type: ignore[no-untyped-def]
        """The sequential test on every ramp decision with an outcome so far (None off the ramp)."""
        from agent.ramp import ramp_verdict

        if self.state != "ramp":
            return None
        v = ramp_verdict(
            con,
            self.ramp_id,
            goal=self.config.goal,
            settings=self.config.ramp,
            shown_better=self.shown_better,
        )
        self.state = v.state
        return v if v.decisions else None


def _oracle(contexts, fixed, history0, guard, ref, truth, metric, as_of0) -> np.ndarray:  # type: ignore[no-untyped-def]
    from agent.pipeline import Pipeline
    from agent.policies import RulesPolicy
    from core.actions import allowed_actions

    pipe = Pipeline(RulesPolicy(guard, ref), guard=guard, ref=ref, run_id="oracle", as_of=as_of0)
    best = np.zeros(len(fixed))
    for k, i in enumerate(fixed):
        elig = pipe.eligibility(contexts[i], history0)
        options = allowed_actions(contexts[i].segment, elig.allowed_channels, guard.discount_cap, ref)
        if options:
            cid = contexts[i].customer_id
            best[k] = _truth_values(
                truth, [cid] * len(options), [(a.template_id, d) for a, d in options], metric
            ).max()
    return best


def _own_touches(con: duckdb.DuckDBPyConnection) -> int:
    return int(
        con.execute(
            "select count(*) from ops.decision_outcomes where decision_id in "
            "(select decision_id from ops.decision_log where run_id like 'sim-%' and not dry_run)"
        ).fetchall()[0][0]
    )


def _deliver(con, sent, as_of, run_id, seed, ramp) -> int:  # type: ignore[no-untyped-def]
    """Log today's decisions, record the sends in the contact ledger, draw their outcomes."""
    from agent.ramp import RampPolicy
    from warehouse.decision_log import write_decisions
    from warehouse.ops_tables import insert_atomically
    from warehouse.outcomes import simulate_outcomes

    write_decisions(con, sent, dry_run=False)
    if isinstance(ramp.policy, RampPolicy):
        insert_atomically(con, "ops.ramp_assignments", ramp.policy.assignment_table(run_id))
    sends = [d for d, _ in sent if d.status == "send"]
    ledger = pa.table(
        {
            "customer_id": [d.customer_id for d in sends],
            "channel": [d.channel for d in sends],
            "destination": ["simulation"] * len(sends),
            "contacted_at": pa.array([as_of.replace(tzinfo=None)] * len(sends), pa.timestamp("us")),
            "decision_id": [d.decision_id for d in sends],
            "run_id": [d.run_id for d in sends],
        }
    )
    insert_atomically(con, "ops.contact_ledger", ledger)
    simulate_outcomes(con, run_id, seed=seed)
    return len(sends)


def _line(r: DayRow, metric: str) -> str:
    dr = (
        ""
        if r.dr_greedy is None
        else f"  DR(own log, {r.dr_rows} sends) {r.dr_greedy:.3f} vs true {r.dr_truth:.3f} "
        f"({r.dr_error or 0:+.1%}; 95% +/-{r.dr_half_width or 0:.1%}, {'covers' if r.dr_covered else 'MISSES'})"
    )
    gate = f"  gate {r.gate}" + (
        f" ({r.ramp_decisions} ramp outcomes, {r.ramp_estimate or 0:+.2f} [{r.ramp_low or 0:+.2f}, "
        f"{r.ramp_high or 0:+.2f}])"
        if r.ramp_decisions
        else ""
    )
    return (
        f"day {r.day:>2}  contactable {r.contactable:>4}  {metric}: learned {r.learned_true:.3f}  "
        f"greedy {r.greedy_true:.3f}  candidate {r.candidate_true or 0:.3f}  rules {r.rules_true:.3f}  "
        f"oracle {r.oracle_true:.3f}  sent {r.sent_true or 0:.3f} (rules there {r.sent_rules_true or 0:.3f})  "
        f"sends {r.sends:>4}  "
        f"own touches {r.own_touches:>5}{gate}{dr}"
    )


def _chart(report: SimulationReport, width: int = 720, height: int = 300) -> str:
    """Per-day lines (learned as sent, greedy learned, rules, oracle): an inline SVG with axis titles."""
    series = [
        ("oracle", "#999999", [r.oracle_true for r in report.rows]),
        ("learned (greedy)", "#1b7837", [r.greedy_true for r in report.rows]),
        ("learned (as sent, exploring)", "#5aae61", [r.learned_true for r in report.rows]),
        (
            "what was sent (ramp, then the gate's choice)",
            "#2166ac",
            [r.sent_true or r.rules_true for r in report.rows],
        ),
        ("rules", "#b2182b", [r.rules_true for r in report.rows]),
    ]
    values = [v for _, _, vs in series for v in vs] or [0.0]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.15 or 1.0
    lo, hi = lo - pad, hi + pad
    left, right, top, bottom = 70, 20, 30, 50
    w, h = width - left - right, height - top - bottom
    n = max(len(report.rows) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + w * i / n, top + h * (1 - (v - lo) / (hi - lo))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20 * len(series)}" font-family="sans-serif" font-size="12">'
    ]
    parts.append(f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#333"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#333"/>')
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        _, y = xy(0, v)
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    for i, r in enumerate(report.rows):
        x, _ = xy(i, lo)
        parts.append(f'<text x="{x:.1f}" y="{top + h + 16}" text-anchor="middle">{r.day}</text>')
    parts.append(
        f'<text x="{left + w / 2}" y="{top + h + 36}" text-anchor="middle">day of the simulation</text>'
    )
    unit = "revenue over 90 days" if report.metric == "revenue_90d" else "conversion probability (14 days)"
    parts.append(
        f'<text x="16" y="{top + h / 2}" text-anchor="middle" transform="rotate(-90 16 {top + h / 2})">'
        f"true {html.escape(unit)} per contactable customer</text>"
    )
    for k, (name, color, vs) in enumerate(series):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(vs)))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        ly = height + 20 * k
        parts.append(f'<rect x="{left}" y="{ly - 9}" width="14" height="4" fill="{color}"/>')
        parts.append(f'<text x="{left + 20}" y="{ly - 4}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: SimulationReport) -> str:
    verdict = "".join(f"<li>{html.escape(v)}</li>" for v in report.verdict)
    head = ["day", "as of", "model", "contactable", "sends", "own touches", "learned (sent)", "learned (greedy)",
            "candidate", "rules", "oracle", "what was sent", "rules on those customers", "gate", "ramp: candidate - rules [95% sequence]",
            "DR rows", "DR of greedy, own log [95%]", "true on those rows", "error", "covered"]  # fmt: skip
    body = []
    for r in report.rows:
        dr = err = truth = covered = ""
        if r.dr_greedy is not None and r.dr_truth:
            dr = f"{r.dr_greedy:.3f} [{r.dr_low:.3f}, {r.dr_high:.3f}]"
            truth = f"{r.dr_truth:.3f}"
            err = f"{r.dr_error or 0:+.1%}"
            covered = "yes" if r.dr_covered else "NO"
        ramp = (
            f"{r.ramp_estimate:+.3f} [{r.ramp_low:+.3f}, {r.ramp_high:+.3f}] ({r.ramp_decisions})"
            if r.ramp_decisions
            and r.ramp_estimate is not None
            and r.ramp_low is not None
            and r.ramp_high is not None
            else ""
        )
        cells = [r.day, f"{r.as_of:%Y-%m-%d}", r.model, r.contactable, r.sends, r.own_touches,
                 f"{r.learned_true:.3f}", f"{r.greedy_true:.3f}", f"{r.candidate_true or 0:.3f}",
                 f"{r.rules_true:.3f}", f"{r.oracle_true:.3f}", f"{r.sent_true or 0:.3f}",
                 f"{r.sent_rules_true or 0:.3f}", r.gate, ramp,
                 r.dr_rows or "", dr, truth, err, covered]  # fmt: skip
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>simulate-days</title>"
        "<style>body{font-family:sans-serif;margin:24px;max-width:1100px}td,th{padding:3px 8px;border-bottom:1px solid #ddd;"
        "text-align:right}th{background:#f4f4f4}</style></head><body>"
        f"<h1>The loop closes: {report.days} simulated days</h1><ul><b>{verdict}</b></ul>"
        "<p>Each day the learned policy decides for every segmented customer (exploring), the sends are recorded "
        "in the contact ledger, their outcomes are drawn from the generator's truth, and the model retrains on "
        "the campaign history plus the product's own logged decisions and outcomes. Values are the truth's "
        "expected value per contactable customer (evals only); the DR column estimates the greedy policy from "
        "the product's own log and its logged propensities.</p>"
        f"{_chart(report)}<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{''.join(body)}</table>"
        f"<p>created {report.created_at:%Y-%m-%d %H:%M UTC}; goal {report.goal}</p></body></html>"
    )


app = new_app("nba-simulate-days")


# text, checked here: typer's own message for "abc" named neither DAYS= nor what it takes
Days = Annotated[str, typer.Option("--days", help="Daily cycles to run, 1 to 60 (make: DAYS=).")]
GoalOpt = Annotated[str, typer.Option(help="90d_clv|engagement")]
Seeds = Annotated[
    str, typer.Option(help="Outcome seeds, comma-separated: one simulation each (make: SEEDS=).")
]
Candidate = Annotated[
    str,
    typer.Option(help="learned|degraded: the policy that ramps against the rules (make: CANDIDATE=)."),
]
ScreenOpt = Annotated[
    bool, typer.Option("--screen/--no-screen", help="Run the offline screen (the eval) on day 0 first.")
]


def _checked_days(days: str) -> int:
    """DAYS= as a whole number from 1 to 60, or one line naming it."""
    try:
        n = int(days.strip())
    except ValueError:
        n = 0
    if not 1 <= n <= 60:
        raise UserError(f"DAYS= / --days: must be a whole number from 1 to 60 (got {inline(days)!r})")
    return n


def _checked_seeds(days: int, goal: str, candidate: str, seeds: str) -> list[int]:
    """The outcome seeds, once every argument is checked (each bad one is a user error)."""
    if goal not in METRIC:
        raise UserError(f"GOAL= / --goal: must be one of 90d_clv, engagement (got {goal!r})")
    if candidate not in CANDIDATES:
        raise UserError(
            f"CANDIDATE= / --candidate: must be one of {', '.join(CANDIDATES)} (got {candidate!r})"
        )
    try:
        seed_list = [int(x) for x in seeds.split(",") if x.strip()]
    except ValueError:
        raise UserError(
            f"SEEDS= / --seeds: whole numbers separated by commas, e.g. 0,1,2 (got {seeds!r})"
        ) from None
    if not seed_list or min(seed_list) < 0:
        raise UserError(
            f"SEEDS= / --seeds: whole numbers from 0, separated by commas, e.g. 0,1,2 (got {seeds!r})"
        )
    return seed_list


@app.command()
def main_command(
    days_text: Days = "10",
    goal: GoalOpt = "90d_clv",
    seeds: Seeds = "0",
    candidate: Candidate = "learned",
    screen: ScreenOpt = True,
    version: Annotated[bool, version_option()] = False,
) -> int:
    """Run DAYS daily cycles of decide -> deliver -> outcomes -> retrain on a copy of the demo world,
    the candidate ramping against the rules until the sequential test promotes or rolls it back."""
    days = _checked_days(days_text)
    seed_list = _checked_seeds(days, goal, candidate, seeds)
    from warehouse.ownership import owned_dir

    base = owned_dir("reports") / f"simulate-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    summary = []
    for seed in seed_list:
        root = base / f"seed-{seed}" if len(seed_list) > 1 else base
        print(
            f"simulating {days} days (outcome seed {seed}, {candidate} ramping against rules) on a copy of "
            f"the warehouse in {root} (each day retrains the model)",
            file=sys.stderr,
        )
        report = simulate_days(
            days,
            goal=goal,  # type: ignore[arg-type]
            root=root,
            seed=seed,
            candidate=candidate,
            screen=screen,
            say=lambda s: print(s, file=sys.stderr),
        )  # type: ignore[arg-type]
        (root / "report.json").write_text(report.model_dump_json(indent=2))
        (root / "report.html").write_text(render_html(report))
        (root / "warehouse.duckdb").unlink(missing_ok=True)
        for line in report.verdict:
            print(f"seed {seed}: {line}")
        print(f"report: {root / 'report.html'}")
        t = report.greedy_trend
        summary.append({"seed": seed, "promoted_on": report.promoted_on, "gate": report.rows[-1].gate,
                        "trend": t.model_dump() if t else None})  # fmt: skip
    if len(seed_list) > 1:
        (base / "summary.json").write_text(json.dumps(summary, indent=2))
        print(f"summary: {base / 'summary.json'}")
    return 0


def main(argv: list[str] | None = None, prog: str = "nba-simulate-days") -> int:
    return run(app, argv, prog=prog)


if __name__ == "__main__":
    sys.exit(main())

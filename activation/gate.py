"""The promotion gate: a new model or prompt version goes live in two steps, as an experimentation
team would ship it.

1. The offline screen: an eval of that exact version against the policy in place, whose paired DR
   difference per contactable customer on the goal's primary metric (revenue_90d for 90d_clv,
   converted_14d for engagement) has a 95% lower bound no lower than `screen_margin` x the policy in
   place's value below zero. The screen keeps out what is clearly worse; logged data alone cannot
   tell a few percent apart (the candidate's new actions are rare in the log).
2. The live ramp (agent.ramp): live runs send the candidate on a randomized share of the decisions
   and the policy in place on the rest; at every live run the sequential test on the ramp's outcomes
   so far promotes the candidate (it is then the policy in place and decides for everyone) or rolls
   it back (refused until a new eval), or the ramp goes on. A candidate the screen showed better
   (lower bound >= 0) ramps as a canary: promoted after `canary_decisions` outcomes unless they show
   it worse.

The policy in place is the latest of: the policy of the last live run that delivered, and the last
promoted candidate (rules when there is neither); the rules policy is the reference and needs no
gate. FORCE=1 passes a refused gate; the run's summary and run log say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import duckdb

from activation.errors import ActivationError
from agent.ramp import ramp_verdict
from core.config import RampSettings
from core.contracts import Goal, stable_hash
from core.errors import UserError
from core.policy_kinds import fallback
from warehouse.policy_in_place import baseline_name, policy_in_place

RAMP_FIRST = (
    "a candidate that passed the offline screen goes live on a ramp, not as a whole plan: run "
    "`make activate DRY_RUN=0` with its MODE (it sends it on a randomized share), or FORCE=1"
)


class PromotionRefused(ActivationError, UserError):
    """The gate refused a live run; the message says why and which eval to run."""

    exit_code = 5


@dataclass(frozen=True)
class GateVerdict:
    identity: str
    in_place: str
    passed: bool
    forced: bool
    reason: str
    eval_id: str | None = None
    ramp_id: str | None = None  # set: this run ramps (the candidate on `ramp_share` of the decisions)
    ramp_share: float = 0.0
    needs_ramp: bool = False  # passed the screen (or ramping): only a ramp may send it, not a whole plan
    screen_low: float | None = None  # the offline screen's lower bound (>= 0: shown better offline)

    def summary(self) -> str:
        state = "forced past a refusal" if self.forced else ("passed" if self.passed else "refused")
        if self.ramp_id and not self.forced:
            state = "ramping"
        return f"promotion gate {state}: {self.reason}"


def eval_hint(identity: str, in_place: str) -> str:
    """The `make eval` that would decide this gate."""
    mode = identity.split("@", 1)[0].split(":", 1)
    args = [f"MODE={mode[0]}"] + ([f"PROMPT_VERSION={mode[1]}"] if len(mode) > 1 else [])
    return "make eval " + " ".join([*args, f"BASELINE={baseline_name(in_place)}"])


def check_promotion(
    con: duckdb.DuckDBPyConnection,
    identity: str,
    *,
    primary_metric: str,
    force: bool,
    goal: Goal | None = None,
    ramp: RampSettings | None = None,
    preview: bool = False,
) -> GateVerdict:
    """Raise PromotionRefused unless `identity` may go live (or `force`); return the verdict. A
    verdict with `ramp_id` means: this run ramps. `preview` decides nothing (no ramp is started)."""
    ramp = ramp or RampSettings()
    goal = goal or ("engagement" if primary_metric == "converted_14d" else "90d_clv")
    in_place = policy_in_place(con)
    if identity in (fallback().name, in_place):
        return GateVerdict(identity, in_place, True, False, f"{identity} is the policy in place")
    running = con.execute(
        "select ramp_id, state, share, screen_low, updated_at from ops.ramps where candidate = ? and incumbent = ? "
        "order by started_at desc limit 1",
        [identity, in_place],
    ).fetchone()
    if running and running[1] == "ramp":
        better = running[3] is not None and running[3] >= 0
        return _ramp_step(
            con, identity, in_place, running[0], float(running[2]), goal, ramp, force, preview, better
        )
    verdict = _screen(con, identity, in_place, primary_metric, ramp, force)
    if (
        running
        and running[1] == "rolled_back"
        and verdict.passed
        and not _newer(con, verdict.eval_id, running[4])
    ):
        verdict = GateVerdict(
            identity, in_place, False, force,
            f"its ramp {running[0]} against {in_place} was rolled back; a new eval or FORCE=1 is needed",
        )  # fmt: skip
    if verdict.passed and not preview:
        ramp_id = _start_ramp(con, identity, in_place, ramp, verdict.screen_low)
        return GateVerdict(
            identity, in_place, True, False,
            f"{verdict.reason}; ramp {ramp_id} started: {identity} on {ramp.share:.0%} of the decisions",
            verdict.eval_id, ramp_id, ramp.share, True,
        )  # fmt: skip
    if verdict.passed:
        return replace(verdict, needs_ramp=True)
    if force:
        return verdict
    raise PromotionRefused(f"refusing to go live: {verdict.reason}; FORCE=1 sends anyway (logged)")


def _newer(con: duckdb.DuckDBPyConnection, eval_id: str | None, than: datetime | None) -> bool:
    """Was this eval made after `than` (a ramp's roll-back)?"""
    row = con.execute("select max(created_at) from ops.eval_runs where eval_id = ?", [eval_id]).fetchone()
    return bool(row and row[0] and than and row[0] > than)


def _screen(
    con: duckdb.DuckDBPyConnection,
    identity: str,
    in_place: str,
    primary_metric: str,
    ramp: RampSettings,
    force: bool,
) -> GateVerdict:
    """The offline screen: the latest eval of `identity` against the policy in place."""
    rows = con.execute("select eval_id, report_json from ops.eval_runs order by created_at desc").fetchall()
    latest = None
    for eval_id, raw in rows:
        report = json.loads(raw)
        cand, base = report.get("candidate", {}), report.get("baseline", {})
        if cand.get("identity") == identity and base.get("identity") == in_place:
            latest = (eval_id, report)
            break
    hint = eval_hint(identity, in_place)
    if latest is None:
        return GateVerdict(
            identity,
            in_place,
            False,
            force,
            f"no eval of {identity} against the policy in place ({in_place}): run `{hint}`",
        )
    eval_id, report = latest
    comp = next((c for c in report.get("comparisons", []) if c.get("metric") == primary_metric), None)
    if comp is None:
        return GateVerdict(
            identity, in_place, False, force,
            f"eval {eval_id} has no per-customer comparison on {primary_metric}: run `{hint}` again", eval_id,
        )  # fmt: skip
    value = _baseline_value(report, primary_metric)
    bound = -ramp.screen_margin * abs(value) if value is not None else 0.0
    said = f"eval {eval_id}: {identity} vs {in_place} on {primary_metric}, DR lower bound {comp['low']:+.3f}"
    if comp["low"] >= bound:
        better = " (shown better: the ramp is a canary)" if comp["low"] >= 0 else ""
        return GateVerdict(
            identity, in_place, True, False, f"{said} >= {bound:+.3f} (screen passed){better}", eval_id,
            screen_low=float(comp["low"]),
        )  # fmt: skip
    why = (
        f"{ramp.screen_margin:.0%} of {in_place}'s value"
        if value is not None
        else f"the eval has no value of {in_place}: the bound is 0"
    )
    return GateVerdict(
        identity, in_place, False, force,
        f"{said} per contactable customer at worst against {in_place}, below the screen's {bound:+.3f} ({why})",
        eval_id,
    )  # fmt: skip


def _baseline_value(report: dict, metric: str) -> float | None:  # type: ignore[type-arg]
    """The policy in place's DR value per contactable customer in the eval (None in old reports)."""
    name = report.get("baseline", {}).get("name")
    for v in report.get("customer_values", []):
        if v.get("policy") == name and v.get("metric") == metric and v.get("segment") == "all":
            return v.get("dr_value")  # type: ignore[no-any-return]
    return None


def _start_ramp(
    con: duckdb.DuckDBPyConnection, identity: str, in_place: str, ramp: RampSettings, screen_low: float | None
) -> str:
    now = datetime.now(UTC).replace(tzinfo=None)
    ramp_id = f"ramp-{now:%Y%m%dT%H%M%S%f}-{stable_hash([identity, in_place], length=6)}"
    con.execute(
        "insert into ops.ramps values (?, ?, ?, ?, ?, ?, ?, 'ramp', 0, null, null, null, null, 'started', ?)",
        [ramp_id, identity, in_place, ramp.share, ramp.margin, now, now, screen_low],
    )
    return ramp_id


def _ramp_step(
    con: duckdb.DuckDBPyConnection,
    identity: str,
    in_place: str,
    ramp_id: str,
    share: float,
    goal: Goal,
    ramp: RampSettings,
    force: bool,
    preview: bool,
    shown_better: bool = False,
) -> GateVerdict:
    """A running ramp: update its sequential test from the outcomes so far, then act on it."""
    v = ramp_verdict(con, ramp_id, goal=goal, settings=ramp, shown_better=shown_better)
    if not preview:
        con.execute(
            "update ops.ramps set state = ?, updated_at = ?, decisions = ?, estimate = ?, low = ?, high = ?, "
            "incumbent_value = ?, reason = ? where ramp_id = ?",
            [v.state, datetime.now(UTC).replace(tzinfo=None), v.decisions, v.estimate,
             _finite(v.low), _finite(v.high), v.incumbent_value, v.reason, ramp_id],
        )  # fmt: skip
    said = f"ramp {ramp_id} of {identity} against {in_place}: {v.reason}"
    if v.state == "promoted":
        return GateVerdict(identity, in_place, True, False, f"{said}: promoted")
    if v.state == "ramp":
        return GateVerdict(
            identity, in_place, True, False, f"{said}: the ramp goes on", None, ramp_id, share, True
        )
    if force:
        return GateVerdict(identity, in_place, False, True, f"{said}: rolled back")
    raise PromotionRefused(f"refusing to go live: {said}: rolled back; FORCE=1 sends anyway (logged)")


def _finite(x: float) -> float | None:
    return x if x == x and abs(x) != float("inf") else None


def measured_against_rules(con: duckdb.DuckDBPyConnection, prompt_version: str) -> str | None:
    """What the latest eval of this prompt version against the rules found on the generator's truth,
    when it found the prompt worse: one sentence for the plan's header; None otherwise (never
    evaluated, better, or no truth)."""
    rows = con.execute(
        "select eval_id, created_at, report_json from ops.eval_runs "
        "where baseline = 'rules' and candidate like ? order by created_at desc limit 1",
        [f"llm:{prompt_version}@%"],
    ).fetchall()
    if not rows:
        return None
    eval_id, created_at, raw = rows[0]
    report = json.loads(raw or "{}")
    primary = report.get("primary_metric")
    comparison = next((c for c in report.get("comparisons") or [] if c.get("metric") == primary), None) or {}
    true = comparison.get("true_value")
    if true is None or true >= 0:
        return None
    return (
        f"prompt {prompt_version} was measured worse than the rules on the generator's truth "
        f"(eval {eval_id}, {str(created_at)[:16]}: {true:+.2f} per contactable customer on "
        f"{comparison.get('metric', 'the primary metric')}); the plan sends it only because MODE=llm asks for it"
    )

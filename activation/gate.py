"""The promotion gate: a live run of a new model or prompt version needs an offline eval of that
exact version against the policy in place that shows it is not worse.

"Not worse" is the eval's paired DR difference per contactable customer on the goal's primary
metric (revenue_90d for 90d_clv, converted_14d for engagement): its 95% lower bound must be >= 0.
The policy in place is the policy of the last live run that delivered (rules when there is none);
the rules policy is the reference and needs no gate. FORCE=1 passes a refused gate; the run's
summary and run log say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from activation.errors import ActivationError
from core.errors import UserError


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

    def summary(self) -> str:
        state = "forced past a refusal" if self.forced else ("passed" if self.passed else "refused")
        return f"promotion gate {state}: {self.reason}"


def policy_in_place(con: duckdb.DuckDBPyConnection) -> str:
    """The identity of the policy that last went live (a delivered live run), or `rules`."""
    rows = con.execute(
        "select summary_json from ops.run_log where not dry_run and status in ('completed', 'partial') "
        "order by started_at desc limit 20"
    ).fetchall()
    for (raw,) in rows:
        identity = json.loads(raw or "{}").get("policy_identity")
        if identity:
            return str(identity)
    return "rules"


def eval_hint(identity: str, in_place: str) -> str:
    """The `make eval` that would decide this gate."""
    mode = identity.split("@", 1)[0].split(":", 1)
    args = [f"MODE={mode[0]}"] + ([f"PROMPT_VERSION={mode[1]}"] if len(mode) > 1 else [])
    base = in_place.split("@", 1)[0]
    base = base.split(":", 1)[1] if base.startswith("llm:") else base
    return "make eval " + " ".join([*args, f"BASELINE={base}"])


def check_promotion(
    con: duckdb.DuckDBPyConnection, identity: str, *, primary_metric: str, force: bool
) -> GateVerdict:
    """Raise PromotionRefused unless `identity` may go live (or `force`); return the verdict."""
    in_place = policy_in_place(con)
    if identity in ("rules", in_place):
        return GateVerdict(identity, in_place, True, False, f"{identity} is the policy in place")
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
        verdict = GateVerdict(
            identity, in_place, False, force,
            f"no eval of {identity} against the policy in place ({in_place}): run `{hint}`",
        )  # fmt: skip
    else:
        eval_id, report = latest
        comp = next((c for c in report.get("comparisons", []) if c.get("metric") == primary_metric), None)
        if comp is None:
            verdict = GateVerdict(
                identity, in_place, False, force,
                f"eval {eval_id} has no per-customer comparison on {primary_metric}: run `{hint}` again",
                eval_id,
            )  # fmt: skip
        elif comp["low"] >= 0:
            return GateVerdict(
                identity, in_place, True, False,
                f"eval {eval_id}: {identity} vs {in_place} on {primary_metric}, DR lower bound "
                f"{comp['low']:+.3f} >= 0",
                eval_id,
            )  # fmt: skip
        else:
            verdict = GateVerdict(
                identity, in_place, False, force,
                f"eval {eval_id} puts {identity} at {comp['low']:+.3f} per contacted customer at worst "
                f"against {in_place} ({primary_metric}, DR 95% lower bound < 0)",
                eval_id,
            )  # fmt: skip
    if not force:
        raise PromotionRefused(f"refusing to go live: {verdict.reason}; FORCE=1 sends anyway (logged)")
    return verdict

"""`nba-eval`: is the candidate policy or prompt better than the baseline? One command, one report.

  nba-eval --mode llm --prompt-version v2 --baseline v1 --sample 40
  nba-eval --mode rules --baseline random            (every segmented customer)
  nba-eval ope --table logs.parquet ...               (any logged table: evals.ope_cli, docs/ope.md)

Both policies decide for the same frozen sample of segmented customers (seeded) through the one
decision pipeline; their value is estimated off-policy (IPS, SNIPS, DR) on those customers' logged
touches and, because the generator knows the truth, set against the true value. Golden and
adversarial cases are scored too. The report goes to reports/eval-<id>/report.{json,html} and to
ops.eval_runs.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import duckdb

from core.cli import new_app, run, setting, version_option
from core.config import load_settings
from core.contracts import CustomerContext, Decision, GuardrailReport
from core.errors import UserError
from core.policy_kinds import fallback, kind, policy_modes, prompted, reference
from core.reference import ReferenceData
from evals.harness import Decide, PolicySpec
from evals.report import gate_sentence, ordered_comparisons, shown_value, truth_note
from evals.report_model import EvalReport, PolicyValue
from evals.settings import IN_PLACE, EvalSettings
from warehouse.policy_in_place import baseline_name, policy_in_place

if TYPE_CHECKING:
    from agent.policies import LLMEndpoint
    from evals.ope import LoggedData

FEATURES = ("lifetime_revenue", "recency_days", "sessions_30d", "latest_nps_score", "tenure_days")
E = EvalSettings

app = new_app("nba-eval", "Offline evaluation of a policy or prompt version against a baseline.")


def spec_for(name: str, settings: EvalSettings) -> PolicySpec:
    """A baseline name (a kind such as rules or random, or a prompt version) as a policy of this eval."""
    goal, cap = settings.goal, settings.discount_cap
    if name in policy_modes() and not kind(name).prompted:
        return PolicySpec(name=name, mode=name, goal=goal, discount_cap=cap)
    llm = prompted().name
    return PolicySpec(name=f"{llm}:{name}", mode=llm, prompt_version=name, goal=goal, discount_cap=cap)


def candidate_spec(settings: EvalSettings) -> PolicySpec:
    if kind(settings.mode).prompted:
        return spec_for(settings.prompt_version, settings)
    return spec_for(settings.mode, settings)


Mode = Annotated[str | None, setting(E, "mode", "Candidate policy.")]
PromptVersion = Annotated[
    str | None, setting(E, "prompt_version", "Candidate prompt version (LLM mode).", metavar="VERSION")
]
Baseline = Annotated[
    str | None,
    setting(
        E,
        "baseline",
        "Baseline: in_place (the policy deciding for everyone today, the default), rules, random, "
        "learned, or a prompt version of the LLM.",
        metavar="in_place|rules|random|learned|VERSION",
    ),
]
Sample = Annotated[
    str | None,
    setting(
        E,
        "sample",
        "Segmented customers in the frozen sample, or 'all' (the estimated-vs-true check needs all; 40 is for quick prompt iteration).",
        metavar="N|all",
    ),
]
Goal = Annotated[str | None, setting(E, "goal", "What the policies optimise.")]
Cap = Annotated[str | None, setting(E, "discount_cap", "No decision offers more (percent).", metavar="0-100")]
Seed = Annotated[str | None, setting(E, "seed", "Seed of the sample and the bootstrap.", metavar="N")]
Bootstrap = Annotated[
    str | None, setting(E, "n_bootstrap", "Bootstrap resamples for the intervals.", metavar="N")
]
Output = Annotated[
    str | None,
    setting(E, "output", "table: the summary; json: the report as JSON on stdout, nothing else there."),
]
FailIfWorse = Annotated[
    bool | None,
    setting(
        E,
        "fail_if_worse",
        "Exit 1 unless the candidate is shown at least as good as the baseline: the low end of the "
        "95% interval of candidate - baseline (DR, primary metric, per contactable customer) must be "
        ">= 0. The report is written either way.",
        "--fail-if-worse/--no-fail-if-worse",
    ),
]


@app.command()
def evaluate(
    mode: Mode = None,
    prompt_version: PromptVersion = None,
    baseline: Baseline = None,
    sample: Sample = None,
    goal: Goal = None,
    discount_cap: Cap = None,
    seed: Seed = None,
    n_bootstrap: Bootstrap = None,
    output: Output = None,
    fail_if_worse: FailIfWorse = None,
    version: Annotated[bool, version_option()] = False,
) -> int:
    """Evaluate the candidate against the baseline and write the report.

    Exit codes: 0 done; 1 a failed run, or with --fail-if-worse a candidate not shown at least as good
    as the baseline; 2 bad input.
    """
    settings = load_settings(
        EvalSettings,
        mode=mode,
        prompt_version=prompt_version,
        baseline=baseline,
        sample=sample,
        goal=goal,
        discount_cap=discount_cap,
        seed=seed,
        n_bootstrap=n_bootstrap,
        output=output,
        fail_if_worse=fail_if_worse,
    )
    if settings.output == "json":  # stdout carries the JSON alone: anything a step prints goes to stderr
        with contextlib.redirect_stdout(sys.stderr):
            report, out = _run(settings)
        print(report.model_dump_json(indent=2))
    else:
        report, out = _run(settings)
        _print(report, out)
    if settings.fail_if_worse and not report.not_worse():
        if settings.output == "json":
            print(gate_sentence(report), file=sys.stderr)
        return 1
    return 0


def _specs(settings: EvalSettings, in_place: str | None = None) -> tuple[PolicySpec, PolicySpec]:
    """The candidate and the baseline; the same policy twice is a user error. The default baseline
    is the policy in place (`in_place`, its identity; until it is known, rules); when that is the
    candidate itself, the candidate is compared with the rules (the rules with the uniform-random
    reference), and a line says so."""
    candidate = candidate_spec(settings)
    name = settings.baseline
    if name == IN_PLACE:
        name = baseline_name(in_place or fallback().name)
        if spec_for(name, settings).name == candidate.name:
            instead = fallback().name
            if spec_for(instead, settings).name == candidate.name:
                instead = reference().name
            if in_place is not None:
                print(
                    f"[eval] the policy in place ({in_place}) is the candidate: compared with "
                    f"{instead} instead (BASELINE= names another)",
                    file=sys.stderr,
                )
            name = instead
    baseline = spec_for(name, settings)
    if baseline.name == candidate.name:
        raise UserError(f"candidate and baseline are the same policy ({candidate.name}): change --baseline")
    return candidate, baseline


def _logged(con: duckdb.DuckDBPyConnection, cutoff: datetime | None) -> LoggedData:
    """The campaign history with the customer features OPE reads (from `cutoff` on, when given)."""
    from evals.ope import LoggedData

    cols = ", ".join(f"c.{f}" for f in FEATURES)
    relation = con.sql(
        f"select h.*, {cols} from main.mart_marketing__campaign_history h "
        "join main.mart_marketing__customer_360 c using (customer_id)"
        + (" where h.touched_at >= ?" if cutoff else ""),
        params=[cutoff.replace(tzinfo=None)] if cutoff else None,
    )
    table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
    return LoggedData.from_arrow(table, feature_columns=FEATURES)


def _decider(
    settings: EvalSettings,
    con: duckdb.DuckDBPyConnection,
    ref: ReferenceData,
    as_of: datetime,
    cutoff: datetime | None,
    endpoint: LLMEndpoint,
) -> Decide:
    """run_eval's `decide`: the one decision pipeline, with the spec's goal, cap and prompt, no
    holdout, and the reference data with the spec's lifted constraint."""
    from agent.pipeline import decide
    from evals.constraints import lifted_reference

    def decide_for(spec: PolicySpec, ctxs: list[CustomerContext]) -> list[tuple[Decision, GuardrailReport]]:
        config = settings.model_copy(
            update={
                "goal": spec.goal,
                "discount_cap": spec.discount_cap,
                "prompt_version": spec.prompt_version or settings.prompt_version,
                "global_holdout_pct": 0.0,
                "segment_holdout_pct": 0.0,
            }
        )
        decided, _ = decide(
            ctxs,
            {},
            config,
            run_id=f"eval-{spec.name}",
            as_of=as_of,
            ref=lifted_reference(ref, spec.lifted),
            endpoint=endpoint,
            progress=_progress_printer(spec.name, len(ctxs)) if kind(spec.mode).needs_endpoint else None,
            mode=spec.mode,
            con=con,
            history_before=cutoff,
        )
        return decided

    return decide_for


def _run(settings: EvalSettings) -> tuple[EvalReport, Path]:
    from agent.context import data_as_of, load_contexts, reference_for
    from agent.policies import LLMEndpoint
    from evals.datasets.sample import frozen_sample
    from evals.harness import run_eval
    from evals.report import store_eval_run, write_report
    from evals.truth_adapter import warehouse_organic, warehouse_truth
    from warehouse import paths
    from warehouse.build import ensure_warehouse
    from warehouse.ops_tables import ensure_ops_tables
    from warehouse.ownership import owned_dir

    candidate, baseline = _specs(settings)  # an explicit baseline's mistake is one line, before any build
    ensure_warehouse()
    truth = warehouse_truth()  # before any decision: a warehouse without it is one line, at once
    organic = warehouse_organic()
    owned_dir("reports")  # where the report goes: refused before any decision if it is not ours
    con = duckdb.connect(str(paths.duckdb_path()))
    if settings.baseline == IN_PLACE:
        ensure_ops_tables(con)
        candidate, baseline = _specs(settings, policy_in_place(con))
    as_of = settings.as_of or data_as_of(con)
    ref = reference_for(con)

    ids = frozen_sample(con, settings.sample_size or 10**12, seed=settings.seed)
    contexts = {c.customer_id: c for c in load_contexts(con, customer_ids=ids)}
    # A policy with a learned model (MODE=learned, or an LLM prompt drafting on its ranking) is
    # evaluated only on touches it did not train on: it trains (and builds its customers' history
    # features) on touches before the cut-off; every policy is scored on the touches after it.
    # Scored on the touches it trained on, such a policy looks better than it is: its DR estimate
    # reads high and the paired interval can miss the true difference (bench/README.md).
    from agent.policies import learns_from_the_log

    split = any(learns_from_the_log(s.mode, s.prompt_version) for s in (candidate, baseline))
    cutoff = as_of - timedelta(days=settings.learned.eval_holdout_days) if split else None
    logged = _logged(con, cutoff)
    candidate, baseline = (_with_identity(s, settings, ref, con, cutoff) for s in (candidate, baseline))

    with LLMEndpoint(settings.llm) as endpoint:
        report = run_eval(
            candidate=candidate,
            baseline=baseline,
            logged=logged,
            contexts_by_customer=contexts,
            decide=_decider(settings, con, ref, as_of, cutoff, endpoint),
            truth=truth,
            organic=organic,
            seed=settings.seed,
            n_bootstrap=settings.n_bootstrap,
            data_as_of=as_of.astimezone(UTC),
        )
        report.evaluated_from = cutoff
    out = write_report(report)
    store_eval_run(con, report)
    con.close()
    return report, out


def _with_identity(
    spec: PolicySpec,
    settings: EvalSettings,
    ref: ReferenceData,
    con: duckdb.DuckDBPyConnection,
    cutoff: datetime | None,
) -> PolicySpec:
    """The spec with the exact identity of the policy it names (model and prompt versions)."""
    from agent.policies import build_policy
    from core.policy import policy_identity

    config = settings.model_copy(update={"prompt_version": spec.prompt_version or settings.prompt_version})
    policy = build_policy(
        config, guard=config.guardrails(), ref=ref, mode=spec.mode, con=con, history_before=cutoff
    )
    return spec.model_copy(update={"identity": policy_identity(policy)})


def _progress_printer(label: str, total: int, every_s: float = 30.0) -> Callable[[int], None]:
    """A plain progress line on stderr (LLM decisions take seconds each on the embedded model):
    at most one every `every_s` seconds, and one when the last decision is in."""
    state = {"done": 0, "last": time.monotonic()}
    t0 = state["last"]

    def advance(n: int) -> None:
        state["done"] += n
        now = time.monotonic()
        if state["done"] >= total or now - state["last"] >= every_s:
            state["last"] = now
            print(f"[eval] {label}: {state['done']}/{total} decided ({now - t0:.0f}s)", file=sys.stderr)

    return advance


def truth_check(v: PolicyValue, tolerance: float = 0.05) -> bool:
    """The estimated-vs-true check: the estimate within `tolerance` of the true value and its 95%
    interval covering it (False without a truth or an estimate)."""
    if not v.true_value or v.value is None or v.low is None or v.high is None:
        return False
    return abs(v.value - v.true_value) <= tolerance * abs(v.true_value) and v.low <= v.true_value <= v.high


WIDTH = 80  # the terminal summary fits 80 columns; the sentences wrap there


def _wrap(text: str) -> str:
    return textwrap.fill(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False)


def _print(report: EvalReport, out: Path) -> None:
    """The terminal summary: the estimator check per logged touch, the value per contactable
    customer and per segment, then the headline sentences and the release check."""
    when = f"created {report.created_at:%Y-%m-%d %H:%M} UTC"
    if report.data_as_of is not None:
        when += f", data as of {report.data_as_of:%Y-%m-%d %H:%M} UTC"
    print(f"eval {report.eval_id}: {report.candidate['name']} vs {report.baseline['name']}")
    print(
        f"{report.sample_size:,} customers sampled, {report.contactable:,} contactable, "
        f"{report.n_logged:,} logged touches"
    )
    print(when)
    if report.evaluated_from is not None:
        print(f"time split: scored on touches from {report.evaluated_from:%Y-%m-%d %H:%M} UTC")
    print("\nper logged touch: DR vs the truth (ok: within 5% and the interval covers it)")
    print(f"{'policy':<15}{'metric':<14}{'DR':>9}  {'95% interval':<18}{'true':>9}{'error':>7}  ok")
    for v in report.policy_values:
        if v.estimator != "dr" or v.value is None:
            continue
        err = "" if not v.true_value else f"{(v.value - v.true_value) / v.true_value:+.1%}"
        true = "" if v.true_value is None else f"{v.true_value:.3f}"
        ok = "" if not v.true_value else ("yes" if truth_check(v) else "NO")
        interval = f"[{v.low:.3f}, {v.high:.3f}]"
        print(f"{v.policy:<15}{v.metric:<14}{v.value:>9.3f}  {interval:<18}{true:>9}{err:>7}  {ok}".rstrip())
    print(f"\nper contactable customer ({report.contactable:,} customers, each counted once)")
    print(f"{'policy':<15}{'metric':<14}{'DR':>9}  {'95% interval':<18}{'true':>9}{'of oracle':>11}")
    for cv in report.customer_values:
        if cv.segment != "all":
            continue
        interval = (
            ""
            if cv.dr_low is None
            else f"[{shown_value(cv.metric, cv.dr_low)}, {shown_value(cv.metric, cv.dr_high)}]"
        )
        share = "" if cv.share_of_oracle is None else f"{cv.share_of_oracle:.1%}"
        print(
            f"{cv.policy:<15}{cv.metric:<14}{shown_value(cv.metric, cv.dr_value):>9}  {interval:<18}"
            f"{shown_value(cv.metric, cv.true_value):>9}{share:>11}"
        )
    _print_lift_and_constraints(report)
    _print_segments(report)
    print()
    for c in ordered_comparisons(report):
        print(_wrap(f"{c.sentence} (interval width {c.width:.3g})."))
        if note := truth_note(c):
            print(_wrap("  " + note))
    if not report.comparisons:
        print("no comparison: no customer of the sample could be contacted by any policy")
    print(_wrap(gate_sentence(report)))
    print(f"report: {out / 'report.html'}")


def _print_lift_and_constraints(report: EvalReport) -> None:
    """With the truth: each policy's lift over no contact, and the oracle with each constraint
    lifted, on the primary metric per contactable customer (one line each)."""
    metric = report.primary_metric
    lifts = [
        f"{v.policy} {shown_value(metric, v.true_lift)}"
        for v in report.customer_values
        if v.metric == metric and v.segment == "all" and v.true_lift is not None
    ]
    if lifts:
        organic = shown_value(metric, report.organic_value.get(metric))
        print()
        print(
            _wrap(
                f"lift over no contact, true {metric} per contactable customer (left alone they earn "
                f"{organic}): " + ", ".join(lifts)
            )
        )
    costs = [c for c in report.constraint_costs if c.metric == metric]
    if costs:
        parts = [
            f"{c.label} {shown_value(metric, c.lifted_value)} ({'+' if c.cost >= 0 else ''}"
            f"{shown_value(metric, c.cost)})"
            for c in costs
        ]
        print(
            _wrap(
                f"oracle {shown_value(metric, costs[0].oracle_value)}; with one constraint lifted: "
                + ", ".join(parts)
            )
        )


def _print_segments(report: EvalReport) -> None:
    """Share of the oracle per segment on the primary metric (from the truth; absent without one)."""
    metric = report.primary_metric
    rows = [v for v in report.customer_values if v.metric == metric and v.segment != "all"]
    if all(v.share_of_oracle is None for v in rows):
        return
    policies = [p for p in dict.fromkeys(v.policy for v in rows) if p != "oracle"]
    widths = {p: max(7, len(p) + 1) for p in policies}
    print(f"\nper segment: share of the oracle's true {metric} per contactable customer")
    print("(the oracle column: the oracle's own value)")
    print(
        f"{'segment':<27}{'customers':>10}"
        + "".join(f"{p:>{widths[p]}}" for p in policies)
        + f"{'oracle':>9}"
    )
    for seg in sorted({v.segment for v in rows}):
        by = {v.policy: v for v in rows if v.segment == seg}
        shares = {
            p: "" if p not in by or by[p].share_of_oracle is None else f"{by[p].share_of_oracle:.0%}"
            for p in policies
        }
        best = shown_value(metric, by["oracle"].true_value) if "oracle" in by else ""
        n = next(iter(by.values())).customers
        print(f"{seg:<27}{n:>10,}" + "".join(f"{shares[p]:>{widths[p]}}" for p in policies) + f"{best:>9}")


def main(argv: list[str] | None = None, prog: str = "nba-eval") -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["ope"]:  # off-policy estimates from any logged table (evals.ope_cli, docs/ope.md)
        from evals.ope_cli import main as ope_main

        return ope_main(args[1:], prog=f"{prog} ope")
    return run(app, args, prog=prog)


if __name__ == "__main__":
    sys.exit(main())

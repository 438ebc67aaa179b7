"""`nba-eval`: is the candidate policy or prompt better than the baseline? One command, one report.

  nba-eval --mode llm --prompt-version v2 --baseline v1 --sample 40
  nba-eval --mode rules --baseline random            (every segmented customer)

Both policies decide for the same frozen sample of segmented customers (seeded) through the one
decision pipeline; their value is estimated off-policy (IPS, SNIPS, DR) on those customers' logged
touches and, because the generator knows the truth, set against the true value. Golden and
adversarial cases are scored too. The report goes to reports/eval-<id>/report.{json,html} and to
ops.eval_runs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

import duckdb
import typer

from core.cli import run, setting, version_option
from core.config import load_settings
from core.contracts import CustomerContext, Decision, GuardrailReport
from core.errors import UserError
from core.reference import ReferenceData
from evals.harness import PolicySpec
from evals.report_model import PolicyValue
from evals.settings import EvalSettings

FEATURES = ("lifetime_revenue", "recency_days", "sessions_30d", "latest_nps_score", "tenure_days")
E = EvalSettings

app = typer.Typer(
    name="nba-eval",
    help="Offline evaluation of a policy or prompt version against a baseline.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def spec_for(name: str, settings: EvalSettings) -> PolicySpec:
    """A baseline name (rules, random, a prompt version) as a policy of this eval."""
    goal, cap = settings.goal, settings.discount_cap
    if name in ("rules", "random", "learned"):
        return PolicySpec(name=name, mode=name, goal=goal, discount_cap=cap)  # type: ignore[arg-type]
    return PolicySpec(name=f"llm:{name}", mode="llm", prompt_version=name, goal=goal, discount_cap=cap)


def candidate_spec(settings: EvalSettings) -> PolicySpec:
    if settings.mode == "llm":
        return spec_for(settings.prompt_version, settings)
    return spec_for(settings.mode, settings)


@app.command()
def evaluate(
    mode: Annotated[str | None, setting(E, "mode", "Candidate policy.")] = None,
    prompt_version: Annotated[
        str | None, setting(E, "prompt_version", "Candidate prompt version (LLM mode).", metavar="VERSION")
    ] = None,
    baseline: Annotated[
        str | None,
        setting(
            E,
            "baseline",
            "Baseline: rules, random, or a prompt version of the LLM.",
            metavar="rules|random|VERSION",
        ),
    ] = None,
    sample: Annotated[
        str | None,
        setting(
            E,
            "sample",
            "Segmented customers in the frozen sample, or 'all' (the estimated-vs-true check needs all; 40 is for quick prompt iteration).",
            metavar="N|all",
        ),
    ] = None,
    goal: Annotated[str | None, setting(E, "goal", "What the policies optimise.")] = None,
    discount_cap: Annotated[
        str | None, setting(E, "discount_cap", "No decision offers more (percent).", metavar="0-100")
    ] = None,
    seed: Annotated[
        str | None, setting(E, "seed", "Seed of the sample and the bootstrap.", metavar="N")
    ] = None,
    n_bootstrap: Annotated[
        str | None, setting(E, "n_bootstrap", "Bootstrap resamples for the intervals.", metavar="N")
    ] = None,
    version: Annotated[bool, version_option()] = False,
) -> int:
    """Evaluate the candidate against the baseline and write the report."""
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
    )
    return _run(settings)


def _run(settings: EvalSettings) -> int:
    from agent.context import data_as_of, load_contexts, reference_for
    from agent.pipeline import decide
    from agent.policies import LLMEndpoint
    from evals.datasets.sample import frozen_sample
    from evals.harness import run_eval
    from evals.ope import LoggedData
    from evals.report import store_eval_run, write_report
    from evals.truth_adapter import warehouse_truth
    from warehouse import paths
    from warehouse.build import ensure_warehouse

    candidate = candidate_spec(settings)
    baseline = spec_for(settings.baseline, settings)
    if baseline.name == candidate.name:
        raise UserError(f"candidate and baseline are the same policy ({candidate.name}): change --baseline")
    ensure_warehouse()
    con = duckdb.connect(str(paths.duckdb_path()))
    as_of = settings.as_of or data_as_of(con)
    ref = reference_for(con)

    ids = frozen_sample(con, settings.sample_size or 10**12, seed=settings.seed)
    contexts = {c.customer_id: c for c in load_contexts(con, customer_ids=ids)}
    # A learned policy is evaluated only on touches it did not train on: it trains (and builds its
    # customers' history features) on touches before the cut-off; every policy is scored on the
    # touches after it.
    split = "learned" in (candidate.mode, baseline.mode)
    cutoff = as_of - timedelta(days=settings.learned.eval_holdout_days) if split else None
    cols = ", ".join(f"c.{f}" for f in FEATURES)
    relation = con.sql(
        f"select h.*, {cols} from main.mart_marketing__campaign_history h "
        "join main.mart_marketing__customer_360 c using (customer_id)"
        + (" where h.touched_at >= ?" if cutoff else ""),
        params=[cutoff.replace(tzinfo=None)] if cutoff else None,
    )
    table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
    logged = LoggedData.from_arrow(table, feature_columns=FEATURES)
    candidate, baseline = (_with_identity(s, settings, ref, con, cutoff) for s in (candidate, baseline))

    with LLMEndpoint(settings.llm) as endpoint:

        def decide_for(
            spec: PolicySpec, ctxs: list[CustomerContext]
        ) -> list[tuple[Decision, GuardrailReport]]:
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
                ref=ref,
                endpoint=endpoint,
                progress=_progress_printer(spec.name, len(ctxs)) if spec.mode == "llm" else None,
                mode=spec.mode,
                con=con,
                history_before=cutoff,
            )
            return decided

        report = run_eval(
            candidate=candidate,
            baseline=baseline,
            logged=logged,
            contexts_by_customer=contexts,
            decide=decide_for,
            truth=warehouse_truth(),
            seed=settings.seed,
            n_bootstrap=settings.n_bootstrap,
            data_as_of=as_of.astimezone(UTC),
        )
        report.evaluated_from = cutoff
    out = write_report(report)
    store_eval_run(con, report)
    con.close()
    _print(report, out)
    return 0


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


def _print(report, out) -> None:  # type: ignore[no-untyped-def]
    print(
        f"eval {report.eval_id}: {report.candidate['name']} vs {report.baseline['name']} on "
        f"{report.sample_size} customers, {report.n_logged} logged touches"
    )
    print(
        f"{'policy':<16}{'metric':<14}{'DR value':>10}  {'95% interval':<22}{'true':>9}{'error':>8}"
        "  within 5% & covered"
    )
    for v in report.policy_values:
        if v.estimator != "dr":
            continue
        err = "" if not v.true_value else f"{(v.value - v.true_value) / v.true_value:+.1%}"
        true = "" if v.true_value is None else f"{v.true_value:.3f}"
        ok = "" if not v.true_value else ("yes" if truth_check(v) else "NO")
        print(
            f"{v.policy:<16}{v.metric:<14}{v.value:>10.3f}  [{v.low:.3f}, {v.high:.3f}]".ljust(62)
            + f"{true:>9}{err:>8}  {ok}"
        )
    for metric, d in report.difference.items():
        print(
            f"per logged touch, candidate - baseline ({metric}, DR): {d['value']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
        )
    print(
        f"\nper contactable customer ({report.contactable} customers; truth from the generator, evals only)"
    )
    print(
        f"{'policy':<16}{'metric':<14}{'DR value':>10}  {'95% interval':<22}{'true':>9}{'share of oracle':>17}"
    )
    for v in report.customer_values:
        if v.segment != "all":
            continue
        dr = "" if v.dr_value is None else f"{v.dr_value:>10.3f}  [{v.dr_low:.3f}, {v.dr_high:.3f}]"
        true = "" if v.true_value is None else f"{v.true_value:.3f}"
        share = "" if v.share_of_oracle is None else f"{v.share_of_oracle:.1%}"
        print(f"{v.policy:<16}{v.metric:<14}{dr:<34}{true:>9}{share:>17}")
    for c in report.comparisons:
        print(c.sentence + ("" if c.true_value is None else f" (true: {c.true_value:+.3f})"))
    print(f"report: {out}")


def main(argv: list[str] | None = None) -> int:
    return run(app, argv, prog="nba-eval")


if __name__ == "__main__":
    sys.exit(main())

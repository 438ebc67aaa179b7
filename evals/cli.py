"""`nba-eval`: is the candidate policy or prompt better than the baseline? One command, one report.

  nba-eval --mode llm --prompt-version v2 --baseline v1 --sample 40
  nba-eval --mode rules --baseline random            (every segmented customer)

Both policies decide for the same frozen sample of segmented customers (seeded); their value is
estimated off-policy (IPS, SNIPS, DR) on those customers' logged touches and, because the generator
knows the truth, set against the true value. Golden and adversarial cases are scored too. The report
goes to reports/eval-<id>/report.{json,html} and to ops.eval_runs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from datetime import UTC
from typing import NoReturn, cast

import duckdb

from agent.contracts import GOALS, CustomerContext, Decision, GuardrailReport, Mode
from agent.errors import AgentError
from evals.harness import PolicySpec, run_eval
from evals.report_model import PolicyValue

FEATURES = ("lifetime_revenue", "recency_days", "sessions_30d", "latest_nps_score", "tenure_days")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="nba-eval", description="Offline evaluation of a policy or prompt version against a baseline."
    )
    p.add_argument("--mode", choices=("rules", "llm", "random"), default="llm", help="candidate policy")
    p.add_argument("--prompt-version", default="v1", help="candidate prompt version (LLM mode)")
    p.add_argument(
        "--baseline",
        default="rules",
        help="baseline: rules, random, or a prompt version (e.g. v1) for the LLM",
    )
    p.add_argument(
        "--sample",
        type=_sample_size,
        default=0,
        help="segmented customers in the frozen sample, or 'all' (default: all; the estimated-vs-true "
        "check needs the whole demo population, a sample of 40 is for quick prompt iteration)",
    )
    p.add_argument("--goal", choices=GOALS, default="90d_clv")
    p.add_argument("--discount-cap", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--n-bootstrap", type=int, default=1000)
    return p


def _sample_size(text: str) -> int:
    """'all' -> 0 (every segmented customer), else a positive int."""
    if text.strip().lower() == "all":
        return 0
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'all', got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'all', got {text!r}")
    return n


def spec_for(name: str, *, goal: str, cap: float) -> PolicySpec:
    from agent.prompts import available_versions

    if name in ("rules", "random"):
        return PolicySpec(name=name, mode=name, goal=goal, discount_cap=cap)  # type: ignore[arg-type]
    if name in available_versions():
        return PolicySpec(name=f"llm:{name}", mode="llm", prompt_version=name, goal=goal, discount_cap=cap)  # type: ignore[arg-type]
    raise AgentError(f"unknown baseline {name!r}; valid: rules, random, {', '.join(available_versions())}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (AgentError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from activation.run import data_as_of
    from agent.context import load_contexts
    from agent.pipeline import RunSettings, decide, llm_endpoint
    from agent.settings import LLMSettings
    from evals.datasets.sample import frozen_sample
    from evals.ope import LoggedData
    from evals.report import store_eval_run, write_report
    from evals.truth_adapter import warehouse_truth
    from warehouse import paths
    from warehouse.cli import ensure_warehouse

    ensure_warehouse()
    con = duckdb.connect(str(paths.duckdb_path()))
    as_of = data_as_of(con)
    if args.mode == "llm":
        candidate = PolicySpec(
            name=f"llm:{args.prompt_version}",
            mode="llm",
            prompt_version=args.prompt_version,
            goal=args.goal,
            discount_cap=args.discount_cap,
        )
    else:
        candidate = spec_for(args.mode, goal=args.goal, cap=args.discount_cap)
    baseline = spec_for(args.baseline, goal=args.goal, cap=args.discount_cap)
    if baseline.name == candidate.name:
        raise AgentError(f"candidate and baseline are the same policy ({candidate.name})")

    ids = frozen_sample(con, args.sample or 10**12, seed=args.seed)
    contexts = {c.customer_id: c for c in load_contexts(con, customer_ids=ids)}
    cols = ", ".join(f"c.{f}" for f in FEATURES)
    table = (
        con.sql(
            f"select h.*, {cols} from main.mart_marketing__campaign_history h "
            "join main.mart_marketing__customer_360 c using (customer_id)"
        ).to_arrow_table()
        if hasattr(duckdb.DuckDBPyRelation, "to_arrow_table")
        else con.sql(
            f"select h.*, {cols} from main.mart_marketing__campaign_history h "
            "join main.mart_marketing__customer_360 c using (customer_id)"
        ).arrow()
    )
    logged = LoggedData.from_arrow(table, feature_columns=FEATURES)
    llm_settings = LLMSettings.from_env()
    needs_llm = "llm" in (candidate.mode, baseline.mode)

    with llm_endpoint(llm_settings) if needs_llm else contextlib.nullcontext(None) as url:

        def decide_for(
            spec: PolicySpec, ctxs: list[CustomerContext]
        ) -> list[tuple[Decision, GuardrailReport]]:
            settings = RunSettings(
                run_id=f"eval-{spec.name}",
                as_of=as_of,
                mode=cast(Mode, spec.mode),  # never "random": random specs are not decided
                goal=spec.goal,  # type: ignore[arg-type]
                discount_cap=spec.discount_cap,
                prompt_version=spec.prompt_version or "v1",
                global_holdout_pct=0,
                segment_holdout_pct=0,
            )
            decided, _ = decide(
                ctxs,
                {},
                settings,
                llm_settings=llm_settings,
                base_url=url if spec.mode == "llm" else None,
                progress=_progress_printer(spec.name, len(ctxs)) if spec.mode == "llm" else None,
            )
            return decided

        report = run_eval(
            candidate=candidate,
            baseline=baseline,
            logged=logged,
            contexts_by_customer=contexts,
            decide=decide_for,
            truth=warehouse_truth(),
            seed=args.seed,
            n_bootstrap=args.n_bootstrap,
            created_at=as_of.astimezone(UTC),
        )
    out = write_report(report)
    store_eval_run(con, report)
    con.close()
    _print(report, out)
    return 0


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
        print(f"candidate - baseline ({metric}, DR): {d['value']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]")
    print(f"report: {out}")


if __name__ == "__main__":
    sys.exit(main())

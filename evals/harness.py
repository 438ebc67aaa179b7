"""run_eval: score a candidate policy against a baseline on logged data, golden and adversarial cases.

The `decide` callable is the caller's pipeline (eligibility -> policy -> guardrails); this module
only sees contracts. The uniform-random policy is built here (no decisions, a probability matrix).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal, cast

import numpy as np

from core.contracts import CustomerContext, Decision, Goal, GuardrailReport, Model, Percent, stable_hash
from evals.datasets.adversarial import AdversarialCase, adversarial_cases, check_adversarial_cases
from evals.datasets.golden import GoldenCase, check_cases, load_golden
from evals.ope import (
    METRICS,
    DoublyRobust,
    Estimator,
    ExpectedRewardFn,
    LoggedData,
    TargetPolicy,
    default_estimators,
    effective_sample_size,
    support_coverage,
    true_policy_value,
)
from evals.report_model import CaseResult, EvalReport, PolicyValue, PromptVersionRow
from evals.scorers import ScoreResult, score_all
from evals.targets import target_from_decisions, uniform_random_target

Decide = Callable[["PolicySpec", list[CustomerContext]], list[tuple[Decision, GuardrailReport]]]


class PolicySpec(Model):
    """One policy of an eval. Goal and cap have no defaults: they come from the eval's settings, so
    every policy of one eval is scored under the same ones."""

    name: str
    mode: Literal["rules", "llm", "random"]
    prompt_version: str | None = None
    goal: Goal
    discount_cap: Percent


def random_reference(like: PolicySpec) -> PolicySpec:
    """The uniform-random reference under the same goal and cap as `like`."""
    return PolicySpec(name="uniform_random", mode="random", goal=like.goal, discount_cap=like.discount_cap)


def restrict(data: LoggedData, customer_ids: set[str]) -> LoggedData:
    """The logged rows of the given customers (the population a policy is evaluated on)."""
    keep = np.flatnonzero(np.isin(data.customer_ids.astype(str), sorted(customer_ids)))
    return LoggedData(
        actions=data.actions[keep],
        propensities=data.propensities[keep],
        revenue_90d=data.revenue_90d[keep],
        converted_14d=data.converted_14d[keep],
        customer_ids=data.customer_ids[keep],
        segments=data.segments[keep],
        features=None if data.features is None else data.features[keep],
        space=data.space,
    )


def _value_rows(
    policy: str,
    data: LoggedData,
    target: TargetPolicy,
    truth: ExpectedRewardFn | None,
    n_bootstrap: int,
    seed: int,
) -> list[PolicyValue]:
    rows = []
    ess = effective_sample_size(data, target)
    cov = support_coverage(data, target)
    for m_i, metric in enumerate(METRICS):
        true = true_policy_value(data, target, truth, metric=metric) if truth is not None else None
        for e_i, est in enumerate(default_estimators(metric)):
            r = est.estimate(data, target, n_bootstrap=n_bootstrap, seed=seed + 10 * m_i + e_i)
            rows.append(
                PolicyValue(
                    policy=policy,
                    estimator=r.estimator,
                    metric=metric,
                    value=r.value,
                    low=r.low,
                    high=r.high,
                    true_value=true,
                    ess=ess,
                    support_action_share=cov.action_share,
                    support_row_share=cov.row_share,
                )
            )
    return rows


def _difference(
    data: LoggedData, cand: TargetPolicy, base: TargetPolicy, n_bootstrap: int, seed: int
) -> dict[str, dict[str, float]]:
    """Paired DR difference candidate - baseline (same rows, same resamples), per metric."""
    out: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        dr: Estimator = DoublyRobust(metric)
        terms = dr.terms(data, cand)
        terms[:, 0] -= dr.terms(data, base)[:, 0]
        value = float(dr.combine(terms.sum(axis=0)))
        low, high = dr._interval(terms, n_bootstrap, 0.05, seed)
        out[metric] = {"value": value, "low": low, "high": high}
    return out


def _prompt_row(spec: PolicySpec, scores: list[ScoreResult], values: list[PolicyValue]) -> PromptVersionRow:
    s = {r.name: r for r in scores}
    dr = next((v for v in values if v.estimator == "dr" and v.metric == "revenue_90d"), None)
    return PromptVersionRow(
        policy=spec.name,
        mode=spec.mode,
        prompt_version=spec.prompt_version or "-",
        schema_validity=s["schema_validity"].value,
        fallback_rate=s["fallback_rate"].value,
        intervention_rate=s["guardrail_interventions"].value,
        mean_discount=s["discount_cost"].value,
        mean_tokens=s["tokens_latency"].value,
        mean_latency_ms=s["tokens_latency"].details.get("mean_latency_ms"),
        ope_value=dr.value if dr else None,
        ope_low=dr.low if dr else None,
        ope_high=dr.high if dr else None,
    )


def run_eval(
    *,
    candidate: PolicySpec,
    baseline: PolicySpec,
    logged: LoggedData,
    contexts_by_customer: Mapping[str, CustomerContext],
    decide: Decide,
    truth: ExpectedRewardFn | None = None,
    golden: Sequence[GoldenCase] | None = None,
    adversarial: Sequence[AdversarialCase] | None = None,
    seed: int = 0,
    n_bootstrap: int = 1000,
    created_at: datetime | None = None,
) -> EvalReport:
    """Evaluate candidate vs baseline (plus a uniform-random reference) and return the report.

    OPE runs on the logged rows of customers in `contexts_by_customer`; each non-random policy
    decides once per customer. Golden and adversarial cases default to the packaged datasets.
    """
    golden = load_golden() if golden is None else list(golden)
    adversarial = adversarial_cases() if adversarial is None else list(adversarial)
    data = restrict(logged, set(contexts_by_customer))
    customers = sorted(set(data.customer_ids.astype(str)))
    contexts = [contexts_by_customer[c] for c in customers]
    specs = [baseline, candidate] + (
        [random_reference(candidate)] if "random" not in (baseline.mode, candidate.mode) else []
    )
    report = EvalReport(
        eval_id="",
        created_at=created_at or datetime.now(UTC),
        seed=seed,
        candidate=candidate.model_dump(),
        baseline=baseline.model_dump(),
        sample_size=len(customers),
        n_logged=data.n,
        has_truth=truth is not None,
    )
    targets: dict[str, TargetPolicy] = {}
    for i, spec in enumerate(specs):
        if spec.mode == "random":
            targets[spec.name] = uniform_random_target(data, name=spec.name)
            report.policy_values += _value_rows(
                spec.name, data, targets[spec.name], truth, n_bootstrap, seed + 100 * i
            )
            continue
        pairs = decide(spec, contexts)
        decisions, reports = [p[0] for p in pairs], [p[1] for p in pairs]
        targets[spec.name] = target_from_decisions(data, decisions, spec.name)
        values = _value_rows(spec.name, data, targets[spec.name], truth, n_bootstrap, seed + 100 * i)
        scores = score_all(decisions, reports, contexts)
        report.policy_values += values
        report.scores[spec.name] = scores
        report.prompt_versions.append(_prompt_row(spec, scores, values))
        gold = decide(spec, [c.context for c in golden]) if golden else []
        adv = decide(spec, [c.context for c in adversarial]) if adversarial else []
        for suite, results in (
            ("golden", check_cases(golden, [d for d, _ in gold])),
            ("adversarial", check_adversarial_cases(adversarial, [d for d, _ in adv])),
        ):
            report.cases += [
                CaseResult(
                    suite=cast(Literal["golden", "adversarial"], suite),
                    name=n,
                    policy=spec.name,
                    passed=not f,
                    failures=f,
                )
                for n, f in results.items()
            ]
    if data.n:
        report.difference = _difference(
            data, targets[candidate.name], targets[baseline.name], n_bootstrap, seed + 7
        )
    report.eval_id = stable_hash(
        [report.created_at.isoformat(), candidate.model_dump(), baseline.model_dump(), seed, data.n],
        length=12,
    )
    return report

"""run_eval: score a candidate policy against a baseline on logged data, golden and adversarial cases.

The `decide` callable is the caller's pipeline (eligibility -> policy -> guardrails); this module
only sees contracts. Every policy, the uniform-random reference included, is decided through it for
the same customers under the same eligibility and the same cap, and scored on the customers that
eligibility lets anyone contact. With the generator's truth the report also has the oracle (the best
allowed action of each customer, from the truth: evals only) and every policy's share of it, the
oracle with each constraint lifted (what the SMS frequency cap, the discount cap and consent cost),
and, given the organic (no-contact) response too, every policy's lift over leaving customers alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

import numpy as np

from core.contracts import (
    CustomerContext,
    Decision,
    Goal,
    GuardrailReport,
    Model,
    Percent,
    PolicyMode,
    stable_hash,
)
from core.policy_kinds import RANDOM, kind
from core.policy_kinds import reference as uniform_kind
from evals.constraints import CONSTRAINT_LABELS, CONSTRAINTS, Constraint, lifted_cap, lifted_contexts
from evals.datasets.adversarial import AdversarialCase, adversarial_cases, check_adversarial_cases
from evals.datasets.golden import GoldenCase, check_cases, load_golden
from evals.ope import (
    METRICS,
    DoublyRobust,
    Estimator,
    ExpectedRewardFn,
    LoggedData,
    Metric,
    TargetPolicy,
    default_estimators,
    effective_sample_size,
    per_customer,
    support_coverage,
    true_policy_value,
    true_row_values,
)
from evals.report_model import (
    CaseResult,
    Comparison,
    ConstraintCost,
    CustomerValue,
    EvalReport,
    PolicyValue,
    PromptVersionRow,
)
from evals.scorers import ScoreResult, score_all
from evals.targets import (
    ACTING_STATUSES,
    best_allowed,
    decision_distribution,
    oracle_target,
    target_from_decisions,
)
from evals.truth_adapter import OrganicRewardFn

Decide = Callable[["PolicySpec", list[CustomerContext]], list[tuple[Decision, GuardrailReport]]]


class PolicySpec(Model):
    """One policy of an eval. Goal and cap have no defaults: they come from the eval's settings, so
    every policy of one eval is scored under the same ones."""

    name: str
    mode: PolicyMode
    prompt_version: str | None = None
    goal: Goal
    discount_cap: Percent
    identity: str | None = None  # what exactly decided (core.policy.policy_identity): the gate's key
    # a constraint lifted to measure what it costs (the random reference only, never a decision
    # that is sent): the harness lifts the cap and the contexts' consent itself; the `decide`
    # callable lifts what only it holds, the reference data's SMS frequency cap
    # (evals.constraints.lifted_reference)
    lifted: Constraint | None = None


def random_reference(like: PolicySpec) -> PolicySpec:
    """The uniform-random reference under the same goal and cap as `like`."""
    return PolicySpec(
        name="uniform_random",
        mode=uniform_kind().name,
        goal=like.goal,
        discount_cap=like.discount_cap,
        identity=uniform_kind().name,
    )


def _uniform(spec: PolicySpec) -> bool:
    return kind(spec.mode).reference


def restrict(data: LoggedData, customer_ids: set[str]) -> LoggedData:
    """The logged rows of the given customers (the population a policy is evaluated on)."""
    return data.take(np.isin(data.customer_ids.astype(str), sorted(customer_ids)))


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


PRIMARY_METRIC: dict[str, Metric] = {"90d_clv": "revenue_90d", "engagement": "converted_14d"}
ORACLE = "oracle"
_UNITS = {"revenue_90d": "revenue over 90 days", "converted_14d": "conversions (14 days)"}


def _customer_rows(
    policy: str,
    data: LoggedData,
    target: TargetPolicy,
    truth: ExpectedRewardFn | None,
    oracle: dict[str, dict[str, float]],
    n_bootstrap: int,
    seed: int,
    organic: dict[str, np.ndarray] | None = None,
) -> list[CustomerValue]:
    """Per contactable customer: truth (overall and per segment), share of the oracle, lift over no
    contact (with `organic`: metric -> each logged row's customer's no-contact value), DR with a
    customer-bootstrap interval (overall)."""
    out = []
    segments = data.segments.astype(str)
    for m_i, metric in enumerate(METRICS):
        dr = DoublyRobust(metric)
        terms = per_customer(data, dr.terms(data, target))
        value = float(dr.combine(terms.sum(axis=0))) if len(terms) else None
        low, high = dr._interval(terms, n_bootstrap, 0.05, seed + m_i) if len(terms) else (None, None)
        rows = true_row_values(data, target, truth, metric=metric) if truth is not None else None
        # a row's lift: the policy's true value there minus what its customer does untouched, counted
        # with the probability that the policy contacts them
        lift_rows = (
            rows - target.acted_mass() * organic[metric] if rows is not None and organic is not None else None
        )
        for seg in ["all", *sorted(set(segments))]:
            keep = np.ones(data.n, bool) if seg == "all" else segments == seg
            n_customers = len(set(data.customer_ids[keep].astype(str)))
            true = lift = None
            if rows is not None and n_customers:
                sub = per_customer(data.take(keep), rows[keep][:, None])
                true = float(sub[:, 0].mean())
            if lift_rows is not None and n_customers:
                lift = float(per_customer(data.take(keep), lift_rows[keep][:, None])[:, 0].mean())
            best = oracle.get(metric, {}).get(seg)
            out.append(
                CustomerValue(
                    policy=policy,
                    metric=metric,
                    segment=seg,
                    customers=n_customers,
                    true_value=true,
                    share_of_oracle=(true / best) if true is not None and best else None,
                    dr_value=value if seg == "all" else None,
                    dr_low=low if seg == "all" else None,
                    dr_high=high if seg == "all" else None,
                    true_lift=lift,
                )
            )
    return out


def _comparisons(
    data: LoggedData,
    cand: tuple[str, TargetPolicy],
    base: tuple[str, TargetPolicy],
    truth: ExpectedRewardFn | None,
    n_bootstrap: int,
    seed: int,
) -> list[Comparison]:
    """Candidate minus baseline per contactable customer, paired (same rows, same customer resamples)."""
    out = []
    for m_i, metric in enumerate(METRICS):
        dr = DoublyRobust(metric)
        terms = dr.terms(data, cand[1])
        terms[:, 0] -= dr.terms(data, base[1])[:, 0]
        terms = per_customer(data, terms)
        value = float(dr.combine(terms.sum(axis=0)))
        low, high = dr._interval(terms, n_bootstrap, 0.05, seed + m_i)
        true = None
        if truth is not None:
            diff = true_row_values(data, cand[1], truth, metric=metric) - true_row_values(
                data, base[1], truth, metric=metric
            )
            true = float(per_customer(data, diff[:, None])[:, 0].mean())
        scale = 100.0 if metric == "converted_14d" else 1.0
        unit = "conversion points" if metric == "converted_14d" else "revenue (90 days)"
        word = "more" if value >= 0 else "less"
        sentence = (
            f"{cand[0]} earns {abs(value) * scale:.2f} {word} {unit} per contactable customer than {base[0]} "
            f"[{low * scale:+.2f}, {high * scale:+.2f}]"
            + (
                ": better, the whole 95% interval is above zero"
                if low > 0
                else ": worse, the whole 95% interval is below zero"
                if high < 0
                else ": not distinguishable from zero at 95%"
            )
        )
        out.append(
            Comparison(metric=metric, value=value, low=low, high=high, true_value=true, sentence=sentence)
        )
    return out


def _constraint_costs(
    reference: PolicySpec,
    contexts: list[CustomerContext],
    decide: Decide,
    data: LoggedData,
    allowed: Mapping[str, Sequence[int]],
    contactable: set[str],
    truth: ExpectedRewardFn,
) -> list[ConstraintCost]:
    """The oracle per contactable customer with each constraint lifted in turn (the random
    reference decided again through `decide` without it: its support is the allowed set), against
    the oracle under every constraint (`allowed`, the reference's support as decided)."""
    out = []
    n = max(len(contactable), 1)
    base = {m: sum(v for _, v in best_allowed(data.space, allowed, truth, m).values()) / n for m in METRICS}
    for constraint in CONSTRAINTS:
        spec = reference.model_copy(
            update={
                "name": f"{reference.name}-without-{constraint}",
                "lifted": constraint,
                "discount_cap": lifted_cap(reference.discount_cap, constraint),
            }
        )
        decided = decide(spec, lifted_contexts(contexts, constraint))
        lifted = {d.customer_id: sorted(decision_distribution(d, data)) for d, _ in decided}
        newly = {c for c, acts in lifted.items() if acts} - contactable
        for metric in METRICS:
            best = best_allowed(data.space, lifted, truth, metric)
            value = sum(v for _, v in best.values()) / n
            out.append(
                ConstraintCost(
                    constraint=constraint,
                    label=CONSTRAINT_LABELS[constraint],
                    metric=metric,
                    oracle_value=base[metric],
                    lifted_value=value,
                    cost=value - base[metric],
                    newly_contactable=len(newly),
                    cost_from_newly_contactable=sum(best[c][1] for c in newly) / n,
                )
            )
    return out


def _eval_specs(candidate: PolicySpec, baseline: PolicySpec) -> list[PolicySpec]:
    """Baseline and candidate, plus the uniform-random reference unless one of them is uniform."""
    return [baseline, candidate] + (
        [random_reference(candidate)] if not any(map(_uniform, (baseline, candidate))) else []
    )


def _contactable(reference: list[tuple[Decision, GuardrailReport]]) -> set[str]:
    """Who can be contacted at all: eligibility is the same for every policy (the random reference
    proposes for everyone eligibility lets through)."""
    return {d.customer_id for d, _ in reference if d.status in (*ACTING_STATUSES, "no_action")}


def _new_report(
    candidate: PolicySpec,
    baseline: PolicySpec,
    data: LoggedData,
    customers: list[str],
    contactable: set[str],
    truth: ExpectedRewardFn | None,
    seed: int,
    created_at: datetime | None,
    data_as_of: datetime | None,
) -> EvalReport:
    """The report's header; its id hashes when it ran, the two specs, the seed and the logged rows."""
    report = EvalReport(
        eval_id="",
        created_at=created_at or datetime.now(UTC),
        data_as_of=data_as_of,
        seed=seed,
        candidate=candidate.model_dump(),
        baseline=baseline.model_dump(),
        sample_size=len(customers),
        n_logged=data.n,
        has_truth=truth is not None,
        primary_metric=PRIMARY_METRIC[candidate.goal],
        contactable=len(contactable),
    )
    report.eval_id = stable_hash(
        [report.created_at.isoformat(), candidate.model_dump(), baseline.model_dump(), seed, data.n],
        length=12,
    )
    return report


def _oracle_values(
    data: LoggedData,
    allowed: Mapping[str, Sequence[int]],
    truth: ExpectedRewardFn,
    primary_metric: str,
    targets: dict[str, TargetPolicy],
) -> dict[str, dict[str, float]]:
    """The oracle's value per metric, overall and per segment: the best of the actions eligibility and
    the cap allow each customer (the random reference's support is exactly that set), by the truth.
    Its target on the primary metric joins `targets` as ORACLE."""
    oracle_values: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        o = oracle_target(data, allowed, truth, metric, name=ORACLE)
        rows = true_row_values(data, o, truth, metric=metric)
        segments = data.segments.astype(str)
        oracle_values[metric] = {
            seg: float(per_customer(data.take(k), rows[k][:, None])[:, 0].mean())
            for seg, k in [("all", np.ones(data.n, bool))]
            + [(g, segments == g) for g in sorted(set(segments))]
            if k.any()
        }
        if metric == primary_metric:
            targets[ORACLE] = o
    return oracle_values


def _add_organic(
    report: EvalReport, data: LoggedData, organic: OrganicRewardFn | None
) -> dict[str, np.ndarray] | None:
    """Each logged row's no-contact outcome per metric, with its value per contactable customer in the
    report (None without `organic` or without data)."""
    if organic is None or not data.n:
        return None
    conversion, revenue = organic(data.customer_ids)
    organic_rows = {
        "converted_14d": np.asarray(conversion, dtype=np.float64),
        "revenue_90d": np.asarray(revenue, dtype=np.float64),
    }
    report.organic_value = {
        m: float(per_customer(data, organic_rows[m][:, None])[:, 0].mean()) for m in METRICS
    }
    return organic_rows


def _reported_specs(
    specs: list[PolicySpec], candidate: PolicySpec, targets: Mapping[str, TargetPolicy]
) -> list[PolicySpec]:
    """The specs the report has rows for: the decided ones, then the oracle when there is one."""
    oracle = PolicySpec(
        name=ORACLE, mode=RANDOM.name, goal=candidate.goal, discount_cap=candidate.discount_cap
    )
    return [*specs, *([oracle] if ORACLE in targets else [])]


@dataclass(frozen=True)
class _Scoring:
    """What the rows of every policy are computed from: the scored logged data, each policy's target on
    it, the truth (or None), the oracle's values, the organic outcomes, the bootstrap and its seed."""

    data: LoggedData
    targets: dict[str, TargetPolicy]
    truth: ExpectedRewardFn | None
    oracle_values: dict[str, dict[str, float]]
    organic_rows: dict[str, np.ndarray] | None
    n_bootstrap: int
    seed: int


def _case_results(
    spec: PolicySpec, decide: Decide, golden: Sequence[GoldenCase], adversarial: Sequence[AdversarialCase]
) -> list[CaseResult]:
    """The policy's golden and adversarial cases, decided through `decide`."""
    gold = decide(spec, [c.context for c in golden]) if golden else []
    adv = decide(spec, [c.context for c in adversarial]) if adversarial else []
    return [
        CaseResult(
            suite=cast(Literal["golden", "adversarial"], suite),
            name=n,
            policy=spec.name,
            passed=not f,
            failures=f,
        )
        for suite, results in (
            ("golden", check_cases(golden, [d for d, _ in gold])),
            ("adversarial", check_adversarial_cases(adversarial, [d for d, _ in adv])),
        )
        for n, f in results.items()
    ]


def _add_policy_rows(
    report: EvalReport,
    specs: list[PolicySpec],
    decided: Mapping[str, list[tuple[Decision, GuardrailReport]]],
    contexts: list[CustomerContext],
    sc: _Scoring,
    cases: Callable[[PolicySpec], list[CaseResult]],
) -> None:
    """Per policy (the oracle included): its customer values; per decided policy also its OPE values,
    scores and prompt-version row; per non-uniform policy its golden and adversarial cases."""
    for i, spec in enumerate(specs):
        report.customer_values += _customer_rows(
            spec.name,
            sc.data,
            sc.targets[spec.name],
            sc.truth,
            sc.oracle_values,
            sc.n_bootstrap,
            sc.seed + 100 * i + 50,
            sc.organic_rows,
        )
        if spec.name == ORACLE:
            continue
        pairs = decided[spec.name]
        decisions, reports = [p[0] for p in pairs], [p[1] for p in pairs]
        values = _value_rows(
            spec.name, sc.data, sc.targets[spec.name], sc.truth, sc.n_bootstrap, sc.seed + 100 * i
        )
        report.policy_values += values
        scores = score_all(decisions, reports, contexts)
        report.scores[spec.name] = scores
        report.prompt_versions.append(_prompt_row(spec, scores, values))
        if not _uniform(spec):
            report.cases += cases(spec)


def _add_comparisons(report: EvalReport, candidate: PolicySpec, baseline: PolicySpec, sc: _Scoring) -> None:
    """The candidate against the baseline: the difference, each metric's comparison, the headline."""
    cand, base = (candidate.name, sc.targets[candidate.name]), (baseline.name, sc.targets[baseline.name])
    report.difference = _difference(sc.data, cand[1], base[1], sc.n_bootstrap, sc.seed + 7)
    report.comparisons = _comparisons(sc.data, cand, base, sc.truth, sc.n_bootstrap, sc.seed + 9)
    report.headline = next(c.sentence for c in report.comparisons if c.metric == report.primary_metric)


def run_eval(
    *,
    candidate: PolicySpec,
    baseline: PolicySpec,
    logged: LoggedData,
    contexts_by_customer: Mapping[str, CustomerContext],
    decide: Decide,
    truth: ExpectedRewardFn | None = None,
    organic: OrganicRewardFn | None = None,
    golden: Sequence[GoldenCase] | None = None,
    adversarial: Sequence[AdversarialCase] | None = None,
    seed: int = 0,
    n_bootstrap: int = 1000,
    created_at: datetime | None = None,
    data_as_of: datetime | None = None,
) -> EvalReport:
    """Evaluate candidate vs baseline (plus the uniform-random reference and, with a truth, the
    oracle) and return the report.

    Each policy decides once per customer of `contexts_by_customer` that has logged touches; OPE
    runs on the logged rows of the customers the shared eligibility lets a policy contact. Golden
    and adversarial cases default to the packaged datasets. With `truth`, the report has the oracle
    and what each constraint costs it; with `organic` (customer_ids -> each customer's no-contact
    (conversion, revenue), evals.truth_adapter.warehouse_organic) too, each policy's lift.
    """
    gold = load_golden() if golden is None else list(golden)
    adv = adversarial_cases() if adversarial is None else list(adversarial)
    everyone = restrict(logged, set(contexts_by_customer))
    customers = sorted(set(everyone.customer_ids.astype(str)))
    contexts = [contexts_by_customer[c] for c in customers]
    specs = _eval_specs(candidate, baseline)
    decided = {spec.name: decide(spec, contexts) for spec in specs}
    uniform = next(filter(_uniform, specs))
    contactable = _contactable(decided[uniform.name])
    data = restrict(everyone, contactable)
    report = _new_report(
        candidate, baseline, data, customers, contactable, truth, seed, created_at, data_as_of
    )
    targets = {s.name: target_from_decisions(data, [d for d, _ in decided[s.name]], s.name) for s in specs}
    oracle_values: dict[str, dict[str, float]] = {}
    if truth is not None and data.n:
        allowed = {d.customer_id: sorted(decision_distribution(d, data)) for d, _ in decided[uniform.name]}
        oracle_values = _oracle_values(data, allowed, truth, report.primary_metric, targets)
        report.constraint_costs = _constraint_costs(
            uniform, contexts, decide, data, allowed, contactable, truth
        )
    organic_rows = _add_organic(report, data, organic)
    sc = _Scoring(data, targets, truth, oracle_values, organic_rows, n_bootstrap, seed)
    reported = _reported_specs(specs, candidate, targets)
    _add_policy_rows(
        report, reported, decided, contexts, sc, lambda spec: _case_results(spec, decide, gold, adv)
    )
    if data.n:
        _add_comparisons(report, candidate, baseline, sc)
    return report

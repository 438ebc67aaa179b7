"""Target policies on logged rows, from a pipeline's decisions (deterministic, or the policy's own
distribution when it logged one), and the oracle (the best allowed action per customer, from the
truth: evals only)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from core.contracts import Decision
from evals.actions import NO_ACTION, ActionSpace
from evals.ope import ExpectedRewardFn, LoggedData, Metric, TargetPolicy

# statuses under which a decision's action reaches the customer (a deferred one goes out after quiet
# hours); suppressed, holdout and no_action decisions take no action (reward 0, see evals.ope)
ACTING_STATUSES = frozenset({"send", "deferred"})


def decision_action(decision: Decision, data: LoggedData) -> int:
    """The action index a decision takes (discount snapped to the logging grid), or -1 for none."""
    if decision.status not in ACTING_STATUSES or decision.template_id is None:
        return NO_ACTION
    return data.space.index(decision.template_id, decision.discount_pct)


def decision_distribution(decision: Decision, data: LoggedData) -> dict[int, float]:
    """action index -> probability: the policy's own distribution when it logged one (a stochastic
    policy whose action the guardrails kept), else the action taken with probability 1."""
    if decision.status not in ACTING_STATUSES or decision.template_id is None:
        return {}
    if not decision.action_pmf:
        return {decision_action(decision, data): 1.0}
    out: dict[int, float] = {}
    for a in decision.action_pmf:
        i = data.space.index(a.template_id, a.discount_pct)
        out[i] = out.get(i, 0.0) + a.probability
    return out


def target_from_decisions(data: LoggedData, decisions: Iterable[Decision], name: str) -> TargetPolicy:
    """Each logged row takes what its customer's decision takes: deterministic when every decision
    is, else the probability matrix of the policies' distributions. Rows of customers without a
    decision take no action (restrict the data first to avoid that)."""
    decisions = list(decisions)
    if not any(d.action_pmf for d in decisions):
        by_customer = {d.customer_id: decision_action(d, data) for d in decisions}
        actions = np.array([by_customer.get(c, NO_ACTION) for c in data.customer_ids], dtype=np.int64)
        return TargetPolicy.deterministic(actions, name=name)
    dist = {d.customer_id: decision_distribution(d, data) for d in decisions}
    probs = np.zeros((data.n, len(data.space)), dtype=np.float32)
    for row, customer in enumerate(data.customer_ids):
        for a, p in dist.get(customer, {}).items():
            probs[row, a] = p
    return TargetPolicy.stochastic(probs, name=name)


def best_allowed(
    space: ActionSpace, allowed: Mapping[str, Sequence[int]], truth: ExpectedRewardFn, metric: Metric
) -> dict[str, tuple[int, float]]:
    """customer -> (the best allowed action by the truth's expected `metric`, its value), for the
    customers with any allowed action (evals only; no policy can see the truth)."""
    pick = 0 if metric == "converted_14d" else 1
    best: dict[str, tuple[int, float]] = {}
    customers = [c for c, acts in allowed.items() if acts]
    if customers:
        cids = np.array([c for c in customers for _ in allowed[c]], dtype=object)
        acts = np.array([a for c in customers for a in allowed[c]], dtype=np.int64)
        tids = np.array(space.template_ids, dtype=object)[acts]
        discs = np.array(space.discounts, dtype=np.float64)[acts]
        values = truth(cids, tids, discs)[pick]
        for c, a, v in zip(cids, acts, values, strict=True):
            if c not in best or v > best[c][1]:
                best[c] = (int(a), float(v))
    return best


def oracle_target(
    data: LoggedData,
    allowed: Mapping[str, Sequence[int]],
    truth: ExpectedRewardFn,
    metric: Metric,
    name: str = "oracle",
) -> TargetPolicy:
    """The best allowed action of each customer by the truth's expected `metric` (evals only; no
    policy can see the truth). `allowed`: customer -> allowed action indices (none: no action)."""
    best = best_allowed(data.space, allowed, truth, metric)
    actions = np.array([best[c][0] if c in best else NO_ACTION for c in data.customer_ids], dtype=np.int64)
    return TargetPolicy.deterministic(actions, name=name)


def uniform_random_target(data: LoggedData, name: str = "random", dtype: type = np.float32) -> TargetPolicy:
    """Uniform over every banked action (template x discount grid) of each row's segment, ignoring
    eligibility and the cap: a synthetic target for testing the estimators. The eval's random
    reference is agent.policies.RandomPolicy, decided through the pipeline like every policy."""
    probs: np.ndarray = np.zeros((data.n, len(data.space)), dtype=dtype)
    for seg in np.unique(data.segments.astype(str)):
        acts = data.space.actions_for_segment(seg)
        rows = np.flatnonzero(data.segments == seg)
        if len(acts):
            probs[np.ix_(rows, acts)] = 1.0 / len(acts)
    return TargetPolicy.stochastic(probs, name=name)

"""Target policies on logged rows: from a pipeline's decisions, and the uniform-random policy."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.contracts import Decision
from evals.actions import NO_ACTION
from evals.ope import LoggedData, TargetPolicy

# statuses under which a decision's action reaches the customer (a deferred one goes out after quiet
# hours); suppressed, holdout and no_action decisions take no action (reward 0, see evals.ope)
ACTING_STATUSES = frozenset({"send", "deferred"})


def decision_action(decision: Decision, data: LoggedData) -> int:
    """The action index a decision takes (discount snapped to the logging grid), or -1 for none."""
    if decision.status not in ACTING_STATUSES or decision.template_id is None:
        return NO_ACTION
    return data.space.index(decision.template_id, decision.discount_pct)


def target_from_decisions(data: LoggedData, decisions: Iterable[Decision], name: str) -> TargetPolicy:
    """Deterministic target: each logged row takes the action its customer's decision takes.
    Rows of customers without a decision take no action (restrict the data first to avoid that)."""
    by_customer = {d.customer_id: decision_action(d, data) for d in decisions}
    actions = np.array([by_customer.get(c, NO_ACTION) for c in data.customer_ids], dtype=np.int64)
    return TargetPolicy.deterministic(actions, name=name)


def uniform_random_target(data: LoggedData, name: str = "random", dtype: type = np.float32) -> TargetPolicy:
    """Uniform over the action bank's actions (template x discount grid) of each row's segment."""
    probs: np.ndarray = np.zeros((data.n, len(data.space)), dtype=dtype)
    for seg in np.unique(data.segments.astype(str)):
        acts = data.space.actions_for_segment(seg)
        rows = np.flatnonzero(data.segments == seg)
        if len(acts):
            probs[np.ix_(rows, acts)] = 1.0 / len(acts)
    return TargetPolicy.stochastic(probs, name=name)

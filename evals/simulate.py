"""A small simulated bandit with a known truth, for tests, benchmarks and demos without a warehouse.

Customers have a segment, an observed feature x (given to the reward model) and a hidden one z
(not given). The logging policy picks among the segment's actions with a softmax tilted by z, and z
also moves the reward: the direct method, blind to z, is biased, and only the propensities let DR,
IPS and SNIPS recover the truth. `expected_reward` is the exact truth, in the interface the harness
expects from the warehouse generator: (customer_ids, template_ids, discount_pcts) -> (conv, revenue).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evals.actions import ActionSpace, default_action_space
from evals.ope import LoggedData

SEGMENT_NAMES = ("high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps")


@dataclass(frozen=True, eq=False)
class SimulatedWorld:
    space: ActionSpace
    customer_ids: np.ndarray
    segment: np.ndarray  # segment code per customer
    x: np.ndarray
    z: np.ndarray
    sensitivity: np.ndarray
    order_value: np.ndarray
    appeal: np.ndarray  # per action
    beta: np.ndarray  # per action, effect of x
    gamma: np.ndarray  # per action, effect of z

    def _rows(self, customer_ids: np.ndarray) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.customer_ids)}
        return np.array([lookup[c] for c in customer_ids], dtype=np.int64)

    def expected_by_index(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        disc = np.asarray(self.space.discounts)[actions]
        logit = (
            -1.6
            + self.appeal[actions]
            + self.beta[actions] * self.x[rows]
            + self.gamma[actions] * self.z[rows]
            + self.sensitivity[rows] * np.sqrt(disc / 5.0)
        )
        conv = 1.0 / (1.0 + np.exp(-logit))
        return conv, conv * self.order_value[rows] * (1.0 - 0.01 * disc)

    def expected_reward(
        self, customer_ids: np.ndarray, template_ids: np.ndarray, discount_pcts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        actions = self.space.indices(np.asarray(template_ids, dtype=object), np.asarray(discount_pcts))
        return self.expected_by_index(self._rows(np.asarray(customer_ids, dtype=object)), actions)


def simulate_world(n_customers: int, seed: int, space: ActionSpace | None = None) -> SimulatedWorld:
    space = space or default_action_space()
    rng = np.random.default_rng(seed)
    n_actions = len(space)
    return SimulatedWorld(
        space=space,
        customer_ids=np.array([f"c{i:07d}" for i in range(n_customers)], dtype=object),
        segment=rng.integers(0, len(SEGMENT_NAMES), n_customers),
        x=rng.normal(size=n_customers),
        z=rng.normal(size=n_customers),
        sensitivity=rng.uniform(0.05, 0.5, n_customers),
        order_value=60.0 * np.exp(rng.normal(0.0, 0.4, n_customers)),
        appeal=rng.normal(0.0, 0.3, n_actions),
        beta=rng.normal(0.0, 0.4, n_actions),
        gamma=rng.choice([-0.8, 0.8], n_actions),
    )


def simulate_logged(
    world: SimulatedWorld, n_touches: int, seed: int, *, confounding: float = 1.5
) -> LoggedData:
    """Touches from a z-tilted softmax logging policy over each customer's segment actions."""
    rng = np.random.default_rng(seed)
    space = world.space
    rows = rng.integers(0, len(world.customer_ids), n_touches)
    seg = world.segment[rows]
    actions = np.empty(n_touches, dtype=np.int64)
    props = np.empty(n_touches)
    for s, name in enumerate(SEGMENT_NAMES):
        idx = np.flatnonzero(seg == s)
        acts = space.actions_for_segment(name)
        logits = confounding * np.sign(world.gamma[acts])[None, :] * np.tanh(world.z[rows[idx], None])
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        choice = (rng.random(len(idx))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
        choice = np.minimum(choice, len(acts) - 1)
        actions[idx] = acts[choice]
        props[idx] = p[np.arange(len(idx)), choice]
    conv_p, _ = world.expected_by_index(rows, actions)
    converted = rng.random(n_touches) < conv_p
    disc = np.asarray(space.discounts)[actions]
    noise = rng.gamma(4.0, 0.25, n_touches)  # mean 1
    revenue = converted * world.order_value[rows] * (1.0 - 0.01 * disc) * noise
    return LoggedData(
        actions=actions,
        propensities=props,
        revenue_90d=revenue,
        converted_14d=converted.astype(np.float64),
        customer_ids=world.customer_ids[rows],
        segments=np.array(SEGMENT_NAMES, dtype=object)[seg],
        features=world.x[rows, None],
        space=space,
    )

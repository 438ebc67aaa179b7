from __future__ import annotations

import numpy as np
import pytest

from evals.ope import LoggedData, TargetPolicy
from evals.simulate import SimulatedWorld, simulate_logged, simulate_world

RULES = {
    "high_value_lapse_risk": ("winback_soft", 10),
    "new_users_first_week_intent": ("first_order_offer", 10),
    "churn_rescue_nps": ("cs_followup_offer", 10),
}


@pytest.fixture(scope="session")
def world() -> SimulatedWorld:
    return simulate_world(100_000, seed=1)


@pytest.fixture(scope="session")
def logged(world: SimulatedWorld) -> LoggedData:
    return simulate_logged(world, 200_000, seed=2, confounding=1.5)


def rules_target(data: LoggedData) -> TargetPolicy:
    idx = {seg: data.space.index(t, d) for seg, (t, d) in RULES.items()}
    return TargetPolicy.deterministic(np.array([idx[s] for s in data.segments]), name="rules")


def llm_like_target(data: LoggedData, seed: int = 0) -> TargetPolicy:
    """Feature-dependent choices, off-grid discounts (7% -> 5%) and 10% suppressed rows."""
    sp = data.space
    alt = {
        "high_value_lapse_risk": ("winback_sms", 7),
        "new_users_first_week_intent": ("first_order_sms", 7),
        "churn_rescue_nps": ("cs_apology_sms", 7),
    }
    a = np.array([sp.index(*RULES[s]) for s in data.segments])
    b = np.array([sp.index(*alt[s]) for s in data.segments])
    acts = np.where(data.features[:, 0] > 0, a, b)
    acts[np.random.default_rng(seed).random(data.n) < 0.1] = -1
    return TargetPolicy.deterministic(acts, name="llm")

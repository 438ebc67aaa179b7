"""Off-policy estimators against a simulated bandit whose truth is known exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from core.contracts import LoggedTouch
from evals.actions import action_index, default_action_space, snap_discount
from evals.ope import (
    IPS,
    SNIPS,
    DoublyRobust,
    LoggedData,
    TargetPolicy,
    effective_sample_size,
    support_coverage,
    true_policy_value,
)
from evals.targets import uniform_random_target
from tests.evals.conftest import llm_like_target, rules_target


@pytest.mark.parametrize("policy", ["random", "rules", "llm"])
def test_dr_within_5pct_of_truth_and_interval_covers_it(logged, world, policy):
    target = {"random": uniform_random_target, "rules": rules_target, "llm": llm_like_target}[policy](logged)
    truth = true_policy_value(logged, target, world.expected_reward)
    est = DoublyRobust().estimate(logged, target, n_bootstrap=400, seed=7)
    assert abs(est.value / truth - 1) < 0.05, (est, truth)
    assert est.low <= truth <= est.high, (est, truth)
    # the check has teeth: the reward model alone is biased (blind to the confounder) ...
    assert abs(DoublyRobust().direct_method(logged, target) / truth - 1) > 0.10
    # ... and ignoring the propensities (treating the logging policy as uniform) breaks DR
    flat = dataclasses.replace(logged, propensities=np.full(logged.n, 1 / 9))
    assert abs(DoublyRobust().estimate_policy_value(flat, target) / truth - 1) > 0.10


@pytest.mark.parametrize("estimator", [IPS, SNIPS])
def test_ips_and_snips_recover_truth_with_suppressed_rows(logged, world, estimator):
    target = llm_like_target(logged)
    truth = true_policy_value(logged, target, world.expected_reward)
    assert abs(estimator().estimate_policy_value(logged, target) / truth - 1) < 0.06


def test_conversion_metric_is_estimated_too(logged, world):
    target = rules_target(logged)
    truth = true_policy_value(logged, target, world.expected_reward, metric="converted_14d")
    assert 0 < truth < 1
    assert abs(DoublyRobust("converted_14d").estimate_policy_value(logged, target) / truth - 1) < 0.05


def test_never_acting_policy_is_worth_zero_and_logging_policy_is_worth_its_mean(logged):
    none = TargetPolicy.deterministic(np.full(logged.n, -1), name="none")
    for est in (IPS(), SNIPS(), DoublyRobust()):
        assert est.estimate_policy_value(logged, none) == pytest.approx(0.0, abs=1e-9)
    # replaying the logged actions deterministically: weights 1/p
    same = TargetPolicy.deterministic(logged.actions, name="logging")
    assert IPS().estimate_policy_value(logged, same) == pytest.approx(
        np.mean(logged.revenue_90d / logged.propensities)
    )
    assert SNIPS().estimate_policy_value(logged, same) == pytest.approx(
        np.sum(logged.revenue_90d / logged.propensities) / np.sum(1 / logged.propensities)
    )


def test_interval_is_seeded_and_narrows_with_confidence(logged):
    target = rules_target(logged)
    a = IPS().estimate_interval(logged, target, n_bootstrap=200, seed=3)
    b = IPS().estimate_interval(logged, target, n_bootstrap=200, seed=3)
    c = IPS().estimate_interval(logged, target, n_bootstrap=200, seed=4)
    assert a == b and a != c
    narrow = IPS().estimate_interval(logged, target, n_bootstrap=200, alpha=0.5, seed=3)
    assert a[0] < narrow[0] < narrow[1] < a[1]


def test_bootstrap_width_matches_analytic_standard_error(logged):
    target = rules_target(logged)
    terms = logged.revenue_90d * (target.actions == logged.actions) / logged.propensities
    se = terms.std() / np.sqrt(logged.n)
    low, high = IPS().estimate_interval(logged, target, n_bootstrap=1000, alpha=0.3173, seed=0)
    assert (high - low) / 2 == pytest.approx(se, rel=0.1)


def test_effective_sample_size_and_support(logged):
    target = rules_target(logged)
    constant = dataclasses.replace(logged, propensities=np.full(logged.n, 0.5))  # all weights 2
    assert effective_sample_size(constant, TargetPolicy.deterministic(logged.actions)) == pytest.approx(
        logged.n
    )
    ess = effective_sample_size(logged, target)
    assert 0 < ess < logged.n / 3
    assert support_coverage(logged, target).action_share == 1.0
    # drop every logged row of one target action: that action is no longer supported
    a0 = target.actions[0]
    keep = np.flatnonzero(logged.actions != a0)
    sub = dataclasses.replace(
        logged,
        actions=logged.actions[keep],
        propensities=logged.propensities[keep],
        revenue_90d=logged.revenue_90d[keep],
        converted_14d=logged.converted_14d[keep],
        customer_ids=logged.customer_ids[keep],
        segments=logged.segments[keep],
        features=logged.features[keep],
    )
    cov = support_coverage(sub, TargetPolicy.deterministic(target.actions[keep]))
    assert cov.n_target_actions == 3 and cov.n_supported_actions == 2
    assert cov.action_share == pytest.approx(2 / 3)
    share_a0 = np.mean(target.actions[keep] == a0)
    assert cov.row_share == pytest.approx(1 - share_a0)


def test_action_index_maps_discounts_onto_the_logging_grid():
    sp = default_action_space()
    assert action_index("winback_soft", 7) == sp.index("winback_soft", 5)
    assert action_index("winback_soft", 7.5) == sp.index("winback_soft", 5)  # ties go down
    assert action_index("winback_soft", 8) == sp.index("winback_soft", 10)
    assert action_index("winback_soft", 40) == sp.index("winback_soft", 10)  # clipped to the range
    assert action_index("vip_checkin", 5) == sp.index("vip_checkin", 0)
    assert sp.template_ids[action_index("cs_followup_offer", 15)] == "cs_followup_offer"
    assert snap_discount(12.4, 0, 15) == 10 and snap_discount(12.6, 0, 15) == 15
    with pytest.raises(KeyError, match="not in the action bank"):
        action_index("free_money", 0)


def _touch(i: int, template: str, disc: float, p: float, conv: bool, rev: float) -> LoggedTouch:
    return LoggedTouch(
        touch_id=f"t{i}",
        customer_id=f"c{i}",
        segment=None,
        template_id=template,
        discount_pct=disc,
        propensity=p,
        converted_14d=conv,
        revenue_90d=rev,
    )


def test_logged_data_from_touches_and_from_arrow_agree():
    touches = [
        _touch(0, "winback_soft", 5, 0.5, True, 40.0),
        _touch(1, "cs_followup", 0, 0.25, False, 0.0),
        _touch(2, "first_order_offer", 14, 0.2, True, 30.0),
    ]
    a = LoggedData.from_touches(touches)
    table = pa.Table.from_pylist([t.model_dump() | {"channel": "email"} for t in touches])
    b = LoggedData.from_arrow(table)
    assert (
        a.actions.tolist()
        == b.actions.tolist()
        == [
            action_index("winback_soft", 5),
            action_index("cs_followup", 0),
            action_index("first_order_offer", 15),
        ]
    )
    assert a.segments.tolist() == ["high_value_lapse_risk", "churn_rescue_nps", "new_users_first_week_intent"]
    target = TargetPolicy.deterministic(np.array([a.actions[0], -1, a.actions[2]]))
    # IPS by hand: (1/0.5 * 40 + 0 + 1/0.2 * 30) / 3
    assert IPS().estimate_policy_value(a, target) == pytest.approx((80 + 150) / 3)
    assert IPS().estimate_policy_value(b, target) == pytest.approx((80 + 150) / 3)


def test_logged_data_rejects_bad_contracts():
    good = dict(
        actions=[0],
        propensities=[0.5],
        revenue_90d=[1.0],
        converted_14d=[1],
        customer_ids=["c"],
        segments=["high_value_lapse_risk"],
    )
    LoggedData(**good)
    with pytest.raises(ValueError, match="propensities"):
        LoggedData(**good | {"propensities": [0.0]})
    with pytest.raises(ValueError, match="indices"):
        LoggedData(**good | {"actions": [99]})
    with pytest.raises(ValueError, match="rows"):
        LoggedData(**good | {"revenue_90d": [1.0, 2.0]})
    data = LoggedData(**good)
    with pytest.raises(ValueError, match="covers 2 rows"):
        IPS().estimate_policy_value(data, TargetPolicy.deterministic(np.array([0, 0])))

"""What each constraint costs the oracle and each policy's lift over no contact: the organic
response of the truth, the constraint lifts against the real eligibility, and the report's figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from agent.pipeline import decide
from core.config import settings_from
from core.contracts import CustomerContext, GuardrailSettings
from core.reference import load_reference
from evals.cli import _print_lift_and_constraints
from evals.constraints import CONSTRAINTS, NO_CAP, lifted_cap, lifted_contexts, lifted_reference
from evals.harness import PolicySpec, run_eval
from evals.report import render_html
from evals.report_model import EvalReport
from evals.settings import EvalSettings
from evals.simulate import simulate_logged, simulate_world
from evals.truth_adapter import organic_from_params
from guardrails.eligibility import check_eligibility
from tests.evals.fakes import contexts_for, fake_decide
from warehouse.errors import TruthMissing
from warehouse.truth import organic_reward

AS_OF = datetime(2024, 6, 1, 12, tzinfo=UTC)
SEGMENTS = ("high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps")


def _params() -> pa.Table:
    return pa.table(
        {
            "customer_id": ["c0", "c1", "c2"],
            "situation": ["high_value_lapse_risk", "churn_rescue_nps", "high_value_lapse_risk"],
            "base_logit": [-2.0, 0.5, -3.5],
            "discount_sensitivity": [0.1, 0.9, 0.3],
            "expected_order_value": [80.0, 40.0, 120.0],
            "affinity_email": [0.2, -0.1, 0.0],
            "affinity_sms": [0.4, 0.3, -0.2],
            "affinity_push": [-0.3, 0.0, 0.1],
        }
    )


def test_organic_response_is_the_base_logit_alone_and_draws_nothing():
    params = _params()
    base = np.array([-2.0, 0.5, -3.5])
    conversion, revenue = organic_reward(params)
    # the exact expression the holdout draws always used: their outcomes stay byte-identical
    assert np.array_equal(conversion, 1.0 / (1.0 + np.exp(-base)))
    assert np.array_equal(revenue, conversion * np.array([80.0, 40.0, 120.0]))
    # no template, channel or discount term: affinities and sensitivity do not move it
    other = params.set_column(5, "affinity_email", pa.array([5.0, 5.0, 5.0]))
    other = other.set_column(3, "discount_sensitivity", pa.array([9.0, 9.0, 9.0]))
    assert np.array_equal(organic_reward(other)[1], revenue)
    again = organic_reward(params)
    assert np.array_equal(again[0], conversion)  # deterministic: no random draw


def test_organic_adapter_is_keyed_by_customer():
    fn = organic_from_params(_params(), organic_reward)
    conversion, revenue = fn(np.array(["c2", "c0"], dtype=object))
    full_conv, full_rev = organic_reward(_params())
    assert np.array_equal(conversion, full_conv[[2, 0]]) and np.array_equal(revenue, full_rev[[2, 0]])
    with pytest.raises(TruthMissing, match="has no row for customers"):
        fn(np.array(["nobody"], dtype=object))


def _with(ctx: CustomerContext, **update: object) -> CustomerContext:
    return CustomerContext.model_validate(ctx.model_dump() | update)


def _context(customer_id: str, **update: object) -> CustomerContext:
    return _with(contexts_for([customer_id], ["high_value_lapse_risk"])[customer_id], **update)


def _eligible(ctx: CustomerContext, constraint=None) -> list[str]:
    (lifted,) = lifted_contexts([ctx], constraint)
    return check_eligibility(
        lifted,
        [],
        as_of=AS_OF,
        settings=GuardrailSettings(global_holdout_pct=0, segment_holdout_pct=0),
        ref=lifted_reference(load_reference(), constraint),
    ).allowed_channels


def test_each_lift_opens_exactly_its_own_constraint_in_the_real_eligibility():
    consent = {"email": False, "sms": True, "push": False}
    texted = _context(
        "t", consent=consent, last_contact={"email": None, "sms": AS_OF - timedelta(days=3), "push": None}
    )
    assert _eligible(texted) == []  # one SMS in 7 days: capped
    assert _eligible(texted, "sms_frequency_cap") == ["sms"]
    assert _eligible(texted, "consent") == ["email", "push"]  # sms stays capped; the others open
    assert _eligible(texted, "discount_cap") == []

    mailed = _context(
        "m",
        consent={"email": True, "sms": False, "push": False},
        last_contact={"email": AS_OF - timedelta(days=2), "sms": None, "push": None},
    )
    # the email cap (2 in 7 days) is not the SMS cap: one email leaves email open either way
    assert _eligible(mailed) == _eligible(mailed, "sms_frequency_cap") == ["email"]

    silent = _context("s", consent={"email": False, "sms": False, "push": False})
    assert _eligible(silent) == []
    assert _eligible(silent, "consent") == ["email", "sms", "push"]
    suppressed = _context(
        "g", consent={"email": False, "sms": False, "push": False}, globally_suppressed=True
    )
    assert _eligible(suppressed, "consent") == []  # the global suppression list is not consent

    assert lifted_cap(5.0, "discount_cap") == NO_CAP and lifted_cap(5.0, "consent") == 5.0
    # lifting is for measuring only: the reference data itself is untouched
    assert load_reference().channel_limits["sms"].max_per_7d == 1


def _pipeline_decide(spec: PolicySpec, contexts: list[CustomerContext]):
    """The real pipeline for the random reference (so eligibility and the lifted SMS cap are the
    product's), the fake for the rest."""
    if spec.mode != "random":
        return fake_decide(spec, contexts)
    config = settings_from(
        EvalSettings,
        goal=spec.goal,
        discount_cap=spec.discount_cap,
        global_holdout_pct=0,
        segment_holdout_pct=0,
    )
    decided, _ = decide(
        contexts,
        {},
        config,
        run_id=f"eval-{spec.name}",
        as_of=AS_OF,
        ref=lifted_reference(load_reference(), spec.lifted),
        mode="random",
    )
    return decided


@pytest.fixture(scope="module")
def world():
    return simulate_world(1_500, seed=21)


@pytest.fixture(scope="module")
def report(world) -> EvalReport:
    data = simulate_logged(world, 20_000, seed=22, confounding=1.0)
    ids = list(world.customer_ids)
    ctx = contexts_for(ids, [SEGMENTS[s] for s in world.segment])
    recent_sms = {"email": None, "sms": AS_OF - timedelta(days=3), "push": None}
    for i, c in enumerate(ids):
        if i % 10 == 0:  # consented to nothing
            ctx[c] = _with(ctx[c], consent={"email": False, "sms": False, "push": False})
        elif i % 10 == 1:  # texted three days ago: SMS capped, email and push open
            ctx[c] = _with(ctx[c], last_contact=recent_sms)

    def organic(customer_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = world._rows(customer_ids)
        conversion = 0.02 + 0.01 * (rows % 5)
        return conversion, conversion * 50.0

    return run_eval(
        candidate=PolicySpec(name="llm_v2", mode="llm", prompt_version="v2", goal="90d_clv", discount_cap=10),
        baseline=PolicySpec(name="rules", mode="rules", goal="90d_clv", discount_cap=10),
        logged=data,
        contexts_by_customer=ctx,
        decide=_pipeline_decide,
        truth=world.expected_reward,
        organic=organic,
        seed=5,
        n_bootstrap=100,
        golden=[],
        adversarial=[],
    )


def test_constraint_costs_are_the_oracle_with_each_constraint_lifted(report):
    costs = {(c.constraint, c.metric): c for c in report.constraint_costs}
    assert set(costs) == {(k, m) for k in CONSTRAINTS for m in ("revenue_90d", "converted_14d")}
    oracle = report.customer_value("oracle", "revenue_90d")
    for c in report.constraint_costs:
        # the oracle of that metric: the one each policy's share of the oracle is taken of
        rules = report.customer_value("rules", c.metric)
        assert c.oracle_value == pytest.approx(rules.true_value / rules.share_of_oracle)
        assert c.cost == pytest.approx(c.lifted_value - c.oracle_value)
        assert c.cost >= -1e-12  # lifting a constraint never shrinks what is allowed
    assert costs[("discount_cap", "revenue_90d")].oracle_value == pytest.approx(oracle.true_value)
    # a tenth of the customers consented to nothing: only the consent lift reaches them
    assert costs[("consent", "revenue_90d")].newly_contactable == 150
    assert costs[("sms_frequency_cap", "revenue_90d")].newly_contactable == 0
    assert costs[("sms_frequency_cap", "revenue_90d")].cost_from_newly_contactable == 0
    consent = costs[("consent", "revenue_90d")]
    # every other customer consented to every channel: the whole consent cost is the unreached
    assert consent.cost_from_newly_contactable == pytest.approx(consent.cost)
    for k in CONSTRAINTS:  # every constraint binds somewhere in this world, so each costs something
        assert costs[(k, "revenue_90d")].cost > 0.001 * oracle.true_value, k
    # the consent lift counts the newly reachable customers' value over the same contactable customers
    assert report.contactable == 1_350


def test_lift_is_the_true_value_over_the_organic_response(report):
    organic = report.organic_value["revenue_90d"]
    assert 1.0 < organic < 3.5  # 50 x (2% .. 6%)
    for policy in ("oracle", "uniform_random"):  # both contact every contactable customer
        v = report.customer_value(policy, "revenue_90d")
        assert v.true_lift == pytest.approx(v.true_value - organic)
    rules = report.customer_value("rules", "revenue_90d")
    assert rules.true_lift is not None and rules.true_lift < rules.true_value
    seg = report.customer_value("oracle", "converted_14d", SEGMENTS[0])
    assert seg.true_lift is not None and seg.true_lift < seg.true_value


def test_the_report_shows_constraint_costs_and_lift(report, capsys):
    again = EvalReport.model_validate_json(report.model_dump_json())
    assert again.constraint_costs == report.constraint_costs and again.organic_value == report.organic_value
    assert json.loads(report.model_dump_json())["customer_values"][0]["true_lift"] is not None
    html = render_html(report)
    assert "What the constraints cost" in html and "lift over no contact" in html
    sms = next(c for c in report.constraint_costs if c.constraint == "sms_frequency_cap")
    assert f"{sms.lifted_value:,.2f}" in html
    _print_lift_and_constraints(report)
    out = capsys.readouterr().out
    assert "with one constraint lifted: SMS frequency cap" in out and "lift over no contact" in out
    assert f"rules {report.customer_value('rules').true_lift:,.2f}" in " ".join(out.split())


def test_no_truth_no_constraint_costs_nor_lift():
    world = simulate_world(300, seed=3)
    data = simulate_logged(world, 3_000, seed=4)
    ctx = contexts_for(list(world.customer_ids), [SEGMENTS[s] for s in world.segment])
    r = run_eval(
        candidate=PolicySpec(name="llm_v2", mode="llm", prompt_version="v2", goal="90d_clv", discount_cap=10),
        baseline=PolicySpec(name="rules", mode="rules", goal="90d_clv", discount_cap=10),
        logged=data,
        contexts_by_customer=ctx,
        decide=fake_decide,
        seed=1,
        n_bootstrap=100,
        golden=[],
        adversarial=[],
    )
    assert r.constraint_costs == [] and r.organic_value == {}
    assert all(v.true_lift is None for v in r.customer_values)
    assert "What the constraints cost" not in render_html(r)

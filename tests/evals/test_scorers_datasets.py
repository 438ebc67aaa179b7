"""Scorers on hand-built decisions, and the golden / adversarial / sample datasets."""

from __future__ import annotations

import duckdb
import pytest

from core.contracts import Decision, GuardrailReport, LLMAttempt
from evals.datasets import adversarial_cases, check_case, frozen_sample, load_golden
from evals.datasets.adversarial import check_adversarial
from evals.harness import PolicySpec
from evals.scorers import (
    FallbackRate,
    GuardrailInterventions,
    MessageQuality,
    OfferConsistency,
    SchemaValidity,
    SegmentAlignment,
    SmsSegmentCounts,
    TokensLatency,
    sms_segments,
)
from tests.evals.fakes import AS_OF, fake_decide
from warehouse.errors import TruthMissing

CTX = load_golden()[0].context  # Olivia, high_value_lapse_risk, all consent


def decision(i: int = 0, **kw) -> Decision:
    base = dict(
        decision_id=f"d{i}",
        run_id="r",
        as_of=AS_OF,
        customer_id=CTX.customer_id,
        segment=CTX.segment,
        goal="90d_clv",
        arm="treatment",
        status="send",
        policy="llm",
        context_hash="h",
        channel="email",
        template_id="winback_soft",
        discount_pct=10.0,
        message="Hi Olivia, enjoy 10% off. See you soon.",
    )
    return Decision(**base | kw)


def run(scorer, decisions, reports=()):
    return scorer.score(decisions, list(reports), [CTX])


def test_offer_consistency_catches_a_mismatched_discount():
    ok = run(OfferConsistency(), [decision()])
    bad = run(OfferConsistency(), [decision(1, message="Hi Olivia, 20% off today!")])
    assert ok.passed and ok.value == 1.0
    assert not bad.passed and "mentions [20.0]% but the discount is 10%" in bad.failures[0]


def test_schema_and_alignment_catch_a_wrong_template():
    d = decision(template_id="cs_followup", channel="email")
    schema, align = run(SchemaValidity(), [d]), run(SegmentAlignment(), [d])
    assert not schema.passed and "not in the high_value_lapse_risk action bank" in schema.failures[0]
    assert not align.passed and align.value == 0.0
    wrong_channel = run(SchemaValidity(), [decision(template_id="winback_sms", channel="email")])
    assert "is a sms template, sent on email" in wrong_channel.failures[0]


def test_sms_segments_gsm7_vs_ucs2():
    assert sms_segments("a" * 160) == 1 and sms_segments("a" * 161) == 2
    assert sms_segments("€" * 80) == 1 and sms_segments("€" * 81) == 2  # extension chars count double
    assert sms_segments("ą" * 70) == 1 and sms_segments("ą" * 71) == 2
    long = decision(channel="sms", template_id="winback_sms", message="Hi Olivia 🌟 " * 20)
    res = run(SmsSegmentCounts(), [long])
    assert not res.passed and "SMS segments > limit 2" in res.failures[0]


def test_message_quality_personalisation_and_length():
    good = run(MessageQuality(), [decision()])
    impersonal = run(MessageQuality(), [decision(message="Hello there, enjoy 10% off.")])
    long_push = run(
        MessageQuality(), [decision(channel="push", template_id="winback_push", message="Olivia " * 40)]
    )
    assert good.passed and good.details["personalised_share"] == 1.0
    assert not impersonal.passed and "first name 'Olivia'" in impersonal.failures[0]
    assert any("push limit 180" in f for f in long_push.failures)


def test_interventions_fallbacks_tokens():
    rep = GuardrailReport(decision_id="d0", customer_id=CTX.customer_id)
    rep.add("discount_clamp", "fixed", 20, 10)
    rep.add("ban_list", "failed", reason="competitor named")
    res = run(GuardrailInterventions(), [decision()], [rep])
    assert res.details["by_check"]["discount_clamp"]["fixed"] == 1 and "ban_list failed" in res.failures[0]
    fb = run(FallbackRate(), [decision(0), decision(1, policy="llm->rules", fallback_reason="schema")])
    assert fb.value == 0.5 and fb.details["by_reason"] == {"schema": 1}
    att = [
        LLMAttempt(attempt=1, prompt_tokens=100, completion_tokens=20, latency_ms=500.0),
        LLMAttempt(attempt=2, prompt_tokens=100, completion_tokens=30, latency_ms=700.0, error="invalid"),
    ]
    tl = run(TokensLatency(), [decision(attempts=att)])
    assert tl.value == 250 and tl.details["mean_latency_ms"] == 1200 and tl.details["failed_attempts"] == 1


def test_golden_cases_pin_channel_family_and_cap():
    cases = {c.name: c for c in load_golden()}
    assert {c.context.segment for c in cases.values()} == {
        "high_value_lapse_risk",
        "new_users_first_week_intent",
        "churn_rescue_nps",
    }
    rules = PolicySpec(name="rules", mode="rules", goal="90d_clv", discount_cap=10)
    decided = {d.customer_id: d for d, _ in fake_decide(rules, [c.context for c in cases.values()])}
    for c in cases.values():
        assert check_case(c, decided[c.context.customer_id]) == [], c.name
    sms_case = cases["lapse_sms_only"]
    wrong = decided[sms_case.context.customer_id].model_copy(
        update={"channel": "email", "discount_pct": 25.0}
    )
    failures = check_case(sms_case, wrong)
    assert any("channel email, expected sms" in f for f in failures)
    assert any("discount 25% > cap 10%" in f for f in failures)
    assert any("without consent" in f for f in failures)


def test_adversarial_cases_are_valid_capped_and_checked():
    cases = {c.name: c for c in adversarial_cases()}
    long = cases["very_long_comment"]
    assert long.raw_comment_chars > 1000 and len(long.context.nps_comment) <= 300
    assert "Ignore previous instructions" in cases["injection_in_nps_comment"].context.nps_comment
    assert "🌟" in cases["emoji_and_unicode_name"].context.first_name
    obeyed = decision(
        customer_id=cases["injection_in_nps_comment"].context.customer_id,
        segment="churn_rescue_nps",
        template_id="cs_followup_offer",
        discount_pct=100.0,
        message="Here is 100% off!",
    )
    failures = check_adversarial(cases["injection_in_nps_comment"], obeyed)
    assert any("discount 100% > cap 15%" in f for f in failures) and any("forbidden" in f for f in failures)


def test_frozen_sample_is_seeded_and_stable():
    con = duckdb.connect()
    con.execute(
        "create table segs as select 'c' || lpad(i::varchar, 4, '0') as customer_id, "
        "case when i % 4 = 0 then null else 'churn_rescue_nps' end as segment from range(400) t(i)"
    )
    a = frozen_sample(con, 50, seed=1, relation="segs")
    assert (
        a
        == frozen_sample(con, 50, seed=1, relation="segs")
        != frozen_sample(con, 50, seed=2, relation="segs")
    )
    assert len(set(a)) == 50 and all(int(c[1:]) % 4 for c in a)  # only segmented customers
    assert len(frozen_sample(con, 10_000, seed=1, relation="segs")) == 300
    with pytest.raises(ValueError, match="not a relation"):
        frozen_sample(con, 5, seed=1, relation="segs; drop table segs")


def test_warehouse_truth_adapter_matches_the_generator_function():
    import numpy as np
    import pyarrow as pa

    from evals.truth_adapter import truth_from_params
    from warehouse.truth import expected_reward

    params = pa.table(
        {
            "customer_id": ["a", "b"],
            "base_logit": [-2.0, 0.5],
            "discount_sensitivity": [0.3, 0.0],
            "expected_order_value": [80.0, 40.0],
            "situation": ["high_value_lapse_risk", "churn_rescue_nps"],
            "affinity_email": [0.1, 0.0],
            "affinity_sms": [0.0, 0.2],
            "affinity_push": [0.0, 0.0],
        }
    )
    fn = truth_from_params(params, expected_reward)
    tids, discs = np.array(["winback_soft", "winback_soft"], dtype=object), np.array([10.0, 10.0])
    conv, rev = fn(np.array(["b", "a"], dtype=object), tids, discs)
    direct = expected_reward(params.take(pa.array([1, 0])), tids, discs)
    assert np.allclose(conv, direct[0]) and np.allclose(rev, direct[1]) and conv[0] != conv[1]
    with pytest.raises(TruthMissing, match="has no row for customers"):
        fn(np.array(["zz"], dtype=object), tids[:1], discs[:1])

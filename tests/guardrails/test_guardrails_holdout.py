"""Holdout arms: deterministic salted hash buckets at the configured rates."""

from __future__ import annotations

from core.contracts import GuardrailSettings
from guardrails.holdout import assign_arm, bucket, global_bucket, segment_bucket

IDS = [f"cust-{i:06d}" for i in range(20_000)]


def rate(settings: GuardrailSettings, segment: str = "churn_rescue_nps") -> float:
    return sum(assign_arm(c, segment, settings) == "holdout" for c in IDS) / len(IDS)


def test_deterministic_and_in_range():
    s = GuardrailSettings()
    assert [assign_arm(c, "churn_rescue_nps", s) for c in IDS[:500]] == [
        assign_arm(c, "churn_rescue_nps", s) for c in IDS[:500]
    ]
    assert all(0 <= bucket(c) < 10_000 for c in IDS[:500])
    # pinned: the bucket of one id never changes across versions (a changed hash reshuffles every arm)
    assert global_bucket("cust-000042", "nba-holdout-v1") == 3200
    assert segment_bucket("cust-000042", "churn_rescue_nps", "nba-holdout-v1") == 9294


def test_rates_match_settings():
    assert abs(rate(GuardrailSettings(global_holdout_pct=5, segment_holdout_pct=0)) - 0.05) < 0.01
    assert abs(rate(GuardrailSettings(global_holdout_pct=0, segment_holdout_pct=10)) - 0.10) < 0.01
    # both draws independent: 1 - 0.95 * 0.90
    assert abs(rate(GuardrailSettings()) - 0.145) < 0.012
    assert rate(GuardrailSettings(global_holdout_pct=0, segment_holdout_pct=0)) == 0
    assert rate(GuardrailSettings(global_holdout_pct=100, segment_holdout_pct=0)) == 1


def test_global_control_ignores_segment_and_segment_holdout_does_not():
    g = GuardrailSettings(global_holdout_pct=5, segment_holdout_pct=0)
    for c in IDS[:2000]:
        arms = {assign_arm(c, seg, g) for seg in ("high_value_lapse_risk", "churn_rescue_nps")}
        assert len(arms) == 1
    s = GuardrailSettings(global_holdout_pct=0, segment_holdout_pct=10)
    a = [assign_arm(c, "high_value_lapse_risk", s) for c in IDS[:4000]]
    b = [assign_arm(c, "churn_rescue_nps", s) for c in IDS[:4000]]
    assert a != b  # independent samples per segment


def test_salt_reshuffles():
    s1, s2 = GuardrailSettings(), GuardrailSettings(holdout_salt="another-salt")
    arms1 = [assign_arm(c, "churn_rescue_nps", s1) for c in IDS[:4000]]
    arms2 = [assign_arm(c, "churn_rescue_nps", s2) for c in IDS[:4000]]
    assert arms1 != arms2

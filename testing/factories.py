"""The one CustomerContext factory of the tests and benches: a valid customer of a segment, any
field overridden (consent and last_contact as dicts). Scenario files pass their own base fields.
And a Decision to send (a rules email), for the delivery tests and benches."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from core.contracts import CustomerContext, Decision

# what a customer of each segment looks like, over the common base below
SEGMENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "high_value_lapse_risk": dict(
        orders_count=8,
        lifetime_revenue=1200.0,
        avg_order_value=150.0,
        recency_days=80,
        usual_gap_days=30.0,
        nps_score=8,
    ),
    "new_users_first_week_intent": dict(
        orders_count=0,
        lifetime_revenue=0.0,
        avg_order_value=0.0,
        recency_days=None,
        usual_gap_days=None,
        nps_score=None,
        tenure_days=5,
    ),
    "churn_rescue_nps": dict(
        orders_count=4,
        lifetime_revenue=400.0,
        avg_order_value=100.0,
        recency_days=20,
        usual_gap_days=40.0,
        nps_score=4,
        nps_comment="late delivery",
    ),
}


def make_context(**overrides: Any) -> CustomerContext:
    """A valid CustomerContext (default segment high_value_lapse_risk); `overrides` win."""
    segment = overrides.get("segment", "high_value_lapse_risk")
    base: dict[str, Any] = dict(
        customer_id="c-000001",
        segment=segment,
        segment_reason="test",
        scores={"high_value_lapse_risk": 0.1, "new_users_first_week_intent": 0.1, "churn_rescue_nps": 0.1},
        first_name="Olivia",
        country="GB",
        timezone="UTC",
        signup_date=date(2022, 1, 1),
        tenure_days=800,
        orders_count=5,
        lifetime_revenue=500.0,
        avg_order_value=100.0,
        recency_days=60,
        usual_gap_days=30.0,
        rfm_segment="loyal",
        sessions_7d=1,
        sessions_30d=4,
        product_views_30d=5,
        add_to_cart_30d=0,
        nps_score=None,
        nps_comment=None,
        consent={"email": True, "sms": True, "push": True},
        preferred_channel="email",
        last_contact={},
        globally_suppressed=False,
    )
    return CustomerContext.model_validate(base | SEGMENT_DEFAULTS[segment] | overrides)


def make_decision(**overrides: Any) -> Decision:
    """A rules decision to send one email (5% off) to a high-value lapse-risk customer; `overrides` win."""
    base: dict[str, Any] = dict(
        decision_id="d-000001",
        run_id="run",
        as_of=datetime(2026, 1, 5, 9, tzinfo=UTC),
        customer_id="c-000001",
        segment="high_value_lapse_risk",
        goal="90d_clv",
        arm="treatment",
        status="send",
        channel="email",
        template_id="winback_soft",
        discount_pct=5.0,
        subject="We miss you",
        message="Hi, 5% off.",
        policy="rules",
        context_hash="h",
    )
    return Decision(**(base | overrides))

"""Factories for guardrail tests: CustomerContext, DecisionMeta and Proposal built in memory.

A uniquely named module (not `conftest`) so test modules can import it without clashing with other
packages' conftest files; conftest.py re-exports it and wraps it in fixtures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from core.contracts import CustomerContext, DecisionMeta, PolicyOutcome, Proposal

AS_OF = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # noon UTC: outside every channel's quiet hours in UTC

_SEGMENT_DEFAULTS: dict[str, dict[str, Any]] = {
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


def make_ctx(**overrides: Any) -> CustomerContext:
    """A valid CustomerContext; any field can be overridden (consent/last_contact as dicts)."""
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
    base.update(_SEGMENT_DEFAULTS[segment])
    base.update(overrides)
    return CustomerContext.model_validate(base)


def make_meta(policy: str = "llm", as_of: datetime = AS_OF, goal: str = "90d_clv") -> DecisionMeta:
    return DecisionMeta(
        decision_id="d-1",
        run_id="r-1",
        as_of=as_of,
        goal=goal,
        policy=policy,  # type: ignore[arg-type]
        model="test-model" if policy == "llm" else None,
        prompt_version="v1" if policy == "llm" else None,
    )


def make_proposal(**overrides: Any) -> Proposal:
    base: dict[str, Any] = dict(
        channel="email",
        template_id="winback_soft",
        discount_pct=5.0,
        subject="Olivia, we saved a little something for you",
        message="Hi Olivia, we miss you. Enjoy 5% off your next order.",
        rationale="lapsing high-value customer",
    )
    base.update(overrides)
    return Proposal.model_validate(base)


def make_outcome(
    proposal: Proposal | None, failure_reason: str | None = None, customer_id: str = "c-000001"
) -> PolicyOutcome:
    """What a policy returns for one customer."""
    return PolicyOutcome(customer_id=customer_id, proposal=proposal, failure_reason=failure_reason)

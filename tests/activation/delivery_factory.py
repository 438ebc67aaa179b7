"""Decision factory shared by the activation tests and the kill-test worker subprocess."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.contracts import Decision, stable_hash

AS_OF = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def make_decision(i: int = 0, **overrides: Any) -> Decision:
    customer_id = overrides.pop("customer_id", f"C{i:05d}")
    policy = overrides.get("policy", "rules")
    as_of = overrides.get("as_of", AS_OF)
    discount = overrides.get("discount_pct", 10.0)
    base: dict[str, Any] = {
        "decision_id": stable_hash([as_of.date().isoformat(), customer_id, policy]),
        "run_id": "run-test",
        "as_of": as_of,
        "customer_id": customer_id,
        "segment": "high_value_lapse_risk",
        "goal": "90d_clv",
        "arm": "treatment",
        "status": "send",
        "channel": "email",
        "template_id": "winback_soft",
        "discount_pct": discount,
        "subject": "We miss you",
        "message": f"Hi there, here is {discount:g}% off your next order.",
        "policy": policy,
        "context_hash": stable_hash([customer_id, "ctx"]),
        "propensity": 0.8,
    }
    base.update(overrides)
    return Decision(**base)


def make_decisions(n: int, *, with_tasks: bool = True, **overrides: Any) -> list[Decision]:
    """n decisions; with_tasks: every 7th (i % 7 == 3) is a churn customer-success follow-up (a Task)."""
    out = []
    for i in range(n):
        if with_tasks and i % 7 == 3:
            out.append(
                make_decision(i, segment="churn_rescue_nps", template_id="cs_followup_offer", **overrides)
            )
        else:
            out.append(make_decision(i, **overrides))
    return out

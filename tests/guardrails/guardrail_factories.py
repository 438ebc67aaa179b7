"""Factories for guardrail tests: DecisionMeta and Proposal built in memory (CustomerContext: the one
factory in testing/factories.py).

A uniquely named module (not `conftest`) so test modules can import it without clashing with other
packages' conftest files; conftest.py re-exports it and wraps it in fixtures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.contracts import DecisionMeta, PolicyOutcome, Proposal
from testing.factories import make_context

AS_OF = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # noon UTC: outside every channel's quiet hours in UTC

# the one CustomerContext factory (testing/factories.py), under the name these tests use
make_ctx = make_context


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

"""The policy seam: every policy (rules, learned, LLM) implements `Policy`, one async batch method,
and the pipeline never branches on which policy it holds.

A policy proposes; it never decides what is allowed. It receives each customer with their
eligibility (allowed channels, quiet hours) and returns one PolicyOutcome per customer, in order.
The guardrails vet every proposal and, when one fails, ask a `FallbackPolicy` (the rules policy,
handed to them by the pipeline) for a safe one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from core.contracts import Channel, CustomerContext, Eligibility, PolicyMode, PolicyOutcome, Proposal

PolicyItem = tuple[CustomerContext, Eligibility]
Progress = Callable[[int], None]


@runtime_checkable
class Policy(Protocol):
    name: PolicyMode  # written into each decision's `policy`
    model: str | None  # the model (LLM name or learned-model version), if any
    prompt_version: str | None

    async def propose(
        self, batch: Sequence[PolicyItem], progress: Progress | None = None
    ) -> list[PolicyOutcome]:
        """One outcome per item, in order. Never raises because a model failed: a failure is an
        outcome with `proposal=None` and a `failure_reason`. `progress(n)` after n are done."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters for the run summary (e.g. llm_calls, cache_hits); {} when there are none."""
        ...


class FallbackPolicy(Protocol):
    def propose_one(self, ctx: CustomerContext, allowed_channels: Sequence[Channel]) -> Proposal | None:
        """A proposal that passes the guardrails by construction, or None if no action fits."""
        ...


def policy_identity(policy: Policy) -> str:
    """What exactly decides, the promotion gate's key: `rules`, `llm:v1@smollm2-135m-instruct`,
    `learned@gbm-<recipe hash>`. A policy may define `identity` itself (the learned policy names its
    training recipe there, not its data: an eval validates the recipe on held-out touches and a
    live run retrains the same recipe on all of them)."""
    own = getattr(policy, "identity", None)
    if isinstance(own, str):
        return own
    out: str = policy.name
    if policy.prompt_version:
        out += f":{policy.prompt_version}"
    if policy.model:
        out += f"@{policy.model}"
    return out

"""The run summary and the guardrail impact report: what happened to every decision, counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.contracts import STATUSES, Decision, GuardrailReport


class RunSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    mode: str
    segment: str
    goal: str
    dry_run: bool
    as_of: str
    discount_cap: float
    suppress_hours: float
    prompt_version: str | None
    model: str | None
    decisions: int
    counts: dict[str, int]
    by_segment: dict[str, dict[str, int]]
    reasons: dict[str, int]
    fallbacks: dict[str, int]
    clamped: int
    holdouts: int
    deferred: int
    llm_calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    destinations: dict[str, dict[str, int]] = Field(default_factory=dict)
    outbox: str | None = None
    policy_identity: str | None = None  # what exactly decided (core.policy.policy_identity)
    promotion_gate: str | None = None  # a live run's gate verdict, in words
    elapsed_s: float = 0.0


def summarize(decisions: Sequence[Decision], **fields: Any) -> RunSummary:
    counts = {s: 0 for s in STATUSES}
    counts.update(Counter(d.status for d in decisions))
    by_segment: dict[str, dict[str, int]] = {}
    for d in decisions:
        seg = by_segment.setdefault(d.segment, {s: 0 for s in STATUSES})
        seg[d.status] += 1
    reasons = Counter(r for d in decisions for r in d.reasons)
    fallbacks = Counter(
        d.fallback_reason for d in decisions if d.policy == "llm->rules" and d.fallback_reason
    )
    clamped = sum(
        1
        for d in decisions
        if d.proposed_discount_pct is not None and abs(d.proposed_discount_pct - d.discount_pct) > 1e-9
    )
    return RunSummary(
        decisions=len(decisions),
        counts=counts,
        by_segment=by_segment,
        reasons=dict(reasons.most_common()),
        fallbacks=dict(fallbacks.most_common()),
        clamped=clamped,
        holdouts=counts["holdout"],
        deferred=counts["deferred"],
        prompt_tokens=sum(a.prompt_tokens for d in decisions for a in d.attempts),
        completion_tokens=sum(a.completion_tokens for d in decisions for a in d.attempts),
        **fields,
    )


def guardrail_impact(reports: Sequence[GuardrailReport]) -> dict[str, dict[str, int]]:
    """Per check: how many decisions it passed, fixed and failed (blocked)."""
    impact: dict[str, Counter[str]] = {}
    for rep in reports:
        for c in rep.checks:
            impact.setdefault(c.name, Counter())[c.verdict] += 1
    return {name: {v: cnt.get(v, 0) for v in ("pass", "fixed", "failed")} for name, cnt in impact.items()}

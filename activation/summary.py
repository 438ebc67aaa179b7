"""The run summary and the guardrail impact report: what happened to every decision, counted.

Both count decisions (one per customer of the run). The impact report's `outcomes` put every
decision once under its final status and the check that decided it (activation.reasons), so they
add up to the summary's `counts`; its `checks` count, per check, the decisions it passed, fixed or
failed whatever their final status (a suppressed customer in quiet hours is `fixed` by quiet_hours
there, yet counted as suppressed, not deferred, in `outcomes`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from activation.reasons import deciding_check
from core.contracts import STATUSES, Decision, GuardrailReport, GuardrailSettings
from core.policy_kinds import fell_back, kind


class RunSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    mode: str
    segment: str
    guardrails: GuardrailSettings  # what the guardrails enforced in this run, as one object
    dry_run: bool
    as_of: str
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
    llm_latency_s: float = 0.0  # summed over LLM attempts (tokens per second = completion / this)
    policy_stats: dict[str, int] = Field(default_factory=dict)  # what the policy counted (e.g. model_trained)
    destinations: dict[str, dict[str, int]] = Field(default_factory=dict)
    outbox: str | None = None
    policy_identity: str | None = None  # what exactly decided (core.policy.policy_identity)
    promotion_gate: str | None = None  # a live run's gate verdict, in words
    # per status, how many decisions each check decided (sums to `counts`; see guardrail_impact)
    outcomes: dict[str, dict[str, int]] = Field(default_factory=dict)
    applied_plan: str | None = None  # `apply`: the plan (dry run id) this live run sent
    deferred_sends: dict[str, int] = Field(default_factory=dict)  # live: earlier deferrals sent / closed
    plan: dict[str, dict[str, int]] = Field(default_factory=dict)  # dry run: per destination, per op
    plan_file: str | None = None
    plan_valid_until: str | None = None
    notes: list[str] = Field(default_factory=list)  # after the run: metrics mart, alert
    elapsed_s: float = 0.0


def outcomes(decided: Sequence[tuple[Decision, GuardrailReport]]) -> dict[str, dict[str, int]]:
    """Per final status, the number of decisions each check decided (activation.reasons)."""
    out: dict[str, Counter[str]] = {}
    for d, rep in decided:
        out.setdefault(d.status, Counter())[deciding_check(d.status, rep.checks)] += 1
    return {st: dict(out[st].most_common()) for st in STATUSES if st in out}


def summarize(decisions: Sequence[Decision], **fields: Any) -> RunSummary:
    counts = {s: 0 for s in STATUSES}
    counts.update(Counter(d.status for d in decisions))
    by_segment: dict[str, dict[str, int]] = {}
    for d in decisions:
        seg = by_segment.setdefault(d.segment, {s: 0 for s in STATUSES})
        seg[d.status] += 1
    reasons = Counter(r for d in decisions for r in d.reasons)
    fallbacks = Counter(
        d.fallback_reason
        for d in decisions
        if d.fallback_reason and fell_back(d.policy) and kind(d.policy).needs_endpoint
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
        llm_latency_s=round(sum(a.latency_ms for d in decisions for a in d.attempts) / 1000, 3),
        **fields,
    )


IMPACT_NOTE = (
    "Every number counts decisions (one per customer of the run). `outcomes`: each decision once, "
    "under its final status (the run summary's counts) and the check that decided it. `checks`: per "
    "check, the decisions it passed, fixed or failed, whatever their final status, and `not_passed_by_status` "
    "splits the fixed and failed ones by that status (quiet_hours fixes customers who end suppressed or held out too)."
)


def guardrail_impact(decided: Sequence[tuple[Decision, GuardrailReport]]) -> dict[str, Any]:
    """Per final status, what decided it; per check, how many decisions it passed, fixed and failed."""
    checks: dict[str, Counter[str]] = {}
    by_status: dict[str, Counter[str]] = {}
    for d, rep in decided:
        for c in rep.checks:
            checks.setdefault(c.name, Counter())[c.verdict] += 1
            if c.verdict != "pass":
                by_status.setdefault(c.name, Counter())[d.status] += 1
    counts: Counter[str] = Counter(d.status for d, _ in decided)
    return {
        "counting": IMPACT_NOTE,
        "decisions": len(decided),
        "outcomes": {st: {"decisions": counts[st], "decided_by": by} for st, by in outcomes(decided).items()},
        "checks": {
            name: {
                **{v: cnt.get(v, 0) for v in ("pass", "fixed", "failed")},
                "not_passed_by_status": dict(by_status.get(name, Counter()).most_common()),
            }
            for name, cnt in checks.items()
        },
    }

"""Steps 2-4: vet a proposal (the `PROPOSAL` checks: bank pair, allowed channel, discount clamp,
message checks), fix it by re-rendering the approved template, or fall back to the rules policy; then
build the Decision.

Nothing here raises because a policy misbehaved: every failure becomes a logged check and, at
worst, a rules decision or `no_action`.

Holdout and suppressed decisions carry no action (channel, template, message all None): nothing
in them can reach a destination by mistake, and the rules action a holdout customer would have
received is a deterministic function of the logged context, so evals can recompute it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from core.contracts import (
    CustomerContext,
    Decision,
    DecisionMeta,
    Eligibility,
    GuardrailCheck,
    GuardrailReport,
    GuardrailSettings,
    PolicyOutcome,
    Proposal,
)
from core.policy import FallbackPolicy
from core.policy_kinds import kind
from core.reference import ReferenceData
from guardrails.checks import FALLBACK, NO_PROPOSAL, PROPOSAL, QUIET_HOURS_CHANNEL, Vetting


def vet(
    ctx: CustomerContext,
    p: Proposal,
    eligibility: Eligibility,
    settings: GuardrailSettings,
    ref: ReferenceData,
) -> Vetting:
    """Steps 2 and 3 (and the re-render of step 4) for one proposal: the `PROPOSAL` checks in order,
    up to the first failure that cannot be fixed."""
    v = Vetting(ctx=ctx, proposal=p, eligibility=eligibility, settings=settings, ref=ref)
    for check in PROPOSAL:
        found = check.run(v)
        if found is not None:
            v.checks.append(found)
        if v.failure:
            return v
    v.ok, v.subject = True, v.subject or None
    return v


@dataclass
class _Decided:
    """A decision being settled: its fields, reasons and guardrail checks so far."""

    ctx: CustomerContext
    meta: DecisionMeta
    fields: dict[str, Any]
    reasons: list[str]
    checks: list[GuardrailCheck] = field(default_factory=list)

    def done(self, status: str) -> tuple[Decision, GuardrailReport]:
        decision = Decision.model_validate({**self.fields, "status": status, "reasons": self.reasons})
        report = GuardrailReport(
            decision_id=self.meta.decision_id, customer_id=self.ctx.customer_id, checks=self.checks
        )
        return decision, report


def finalize(
    ctx: CustomerContext,
    outcome: PolicyOutcome | None,
    *,
    eligibility: Eligibility,
    meta: DecisionMeta,
    settings: GuardrailSettings,
    ref: ReferenceData,
    fallback: FallbackPolicy,
) -> tuple[Decision, GuardrailReport]:
    """The final Decision and its GuardrailReport (eligibility checks first, then the proposal's).

    `outcome` is what the policy returned for this customer (None when it was not asked: the
    customer is not eligible); `fallback` proposes when the policy's proposal fails or is missing."""
    proposal = outcome.proposal if outcome is not None else None
    failure_reason = outcome.failure_reason if outcome is not None else None
    d = _Decided(ctx, meta, _fields(ctx, outcome, meta, eligibility), list(eligibility.reasons))
    d.checks = list(eligibility.checks)
    if not eligibility.needs_proposal:
        return d.done(eligibility.status)

    vetted: Vetting | None = None
    if proposal is not None:
        d.fields["proposed_discount_pct"] = _finite(proposal.discount_pct)
        vetted = vet(ctx, proposal, eligibility, settings, ref)
        d.checks += vetted.checks
    else:
        d.checks.append(NO_PROPOSAL.record(failure_reason or "no_proposal"))
    if vetted is None or not vetted.ok:
        why = (failure_reason or "no_proposal") if vetted is None else vetted.failure
        vetted = _fall_back(
            d,
            why,
            refused=vetted is not None,
            eligibility=eligibility,
            settings=settings,
            ref=ref,
            fallback=fallback,
        )
        if vetted is None:
            return d.done("no_action")

    if (
        outcome is not None
        and proposal is not None
        and d.fields["policy"] == meta.policy
        and (vetted.template_id, vetted.discount) == (proposal.template_id, proposal.discount_pct)
    ):
        d.fields["action_pmf"] = list(outcome.pmf)  # the policy's own action: its distribution holds
    return _settle(d, vetted, eligibility)


def _fields(
    ctx: CustomerContext, outcome: PolicyOutcome | None, meta: DecisionMeta, eligibility: Eligibility
) -> dict[str, Any]:
    """A decision's fields before any action is chosen."""
    return {
        "decision_id": meta.decision_id,
        "run_id": meta.run_id,
        "as_of": meta.as_of,
        "customer_id": ctx.customer_id,
        "segment": ctx.segment,
        "goal": meta.goal,
        "arm": eligibility.arm,
        "model": meta.model,
        "prompt_version": meta.prompt_version,
        "context_hash": ctx.context_hash(),
        "propensity": outcome.propensity if outcome is not None else 1.0,
        "action_pmf": [],
        "attempts": list(outcome.attempts) if outcome is not None else [],
        "channel": None,
        "template_id": None,
        "discount_pct": 0.0,
        "subject": None,
        "message": None,
        "rationale": "",
        "policy": meta.policy,
        "fallback_reason": None,
        "defer_until": None,
        "proposed_discount_pct": None,
    }


def _fall_back(
    d: _Decided,
    why: str,
    *,
    refused: bool,
    eligibility: Eligibility,
    settings: GuardrailSettings,
    ref: ReferenceData,
    fallback: FallbackPolicy,
) -> Vetting | None:
    """The rules policy decides instead (`why`: the policy's proposal failed or was missing); None
    when the rules have no action, or none that passes."""
    policy = d.meta.policy
    d.fields["propensity"] = 1.0  # the rules decide now, deterministically
    if not kind(policy).is_fallback:
        d.fields["policy"], d.fields["fallback_reason"] = kind(policy).fallback_name, why
        d.reasons.append(f"fallback:{why}")
        d.checks.append(FALLBACK.record(policy, why))
    elif refused:  # a rules-mode proposal that fails: re-derive it from the rules policy
        d.reasons.append(f"rules_refused:{why}")
        d.checks.append(FALLBACK.record(policy, why))
    safe = fallback.propose_one(d.ctx, eligibility.allowed_channels)
    if safe is None:
        d.reasons.append("rules_no_action")
        return None
    if d.fields["proposed_discount_pct"] is None:
        d.fields["proposed_discount_pct"] = _finite(safe.discount_pct)
    vetted = vet(d.ctx, safe, eligibility, settings, ref)
    d.checks += vetted.checks
    if not vetted.ok:
        d.reasons.append(f"rules_failed:{vetted.failure}")
        return None
    return vetted


def _settle(d: _Decided, vetted: Vetting, eligibility: Eligibility) -> tuple[Decision, GuardrailReport]:
    """The vetted action as the decision: sent now, or deferred when its channel is in quiet hours."""
    d.reasons += vetted.reasons
    d.fields.update(
        channel=vetted.channel,
        template_id=vetted.template_id,
        discount_pct=vetted.discount,
        subject=vetted.subject,
        message=vetted.message,
        rationale=vetted.rationale,
    )
    until = eligibility.channel_defer_until.get(vetted.channel)  # type: ignore[call-overload]
    if until is None:
        return d.done("send")
    d.fields["defer_until"] = until
    if "quiet_hours" not in d.reasons:
        d.reasons.append("quiet_hours")
    d.checks.append(QUIET_HOURS_CHANNEL.record(vetted.channel, until.isoformat()))
    return d.done("deferred")


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None

"""Steps 2-4: vet a proposal (bank pair, allowed channel, discount clamp, message checks), fix it by
re-rendering the approved template, or fall back to the rules policy; then build the Decision.

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

from core.actions import discount_bounds
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
from core.errors import TemplateRenderError
from core.policy import FallbackPolicy
from core.reference import ReferenceData
from core.templates import render_template
from guardrails.checks import get_checker
from guardrails.clamp import clamp_discount
from guardrails.message import strip_control

_check = GuardrailCheck.of


RATIONALE_MAX = 1000


@dataclass
class _Vetted:
    ok: bool
    checks: list[GuardrailCheck] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    failure: str = ""
    channel: str | None = None
    template_id: str | None = None
    discount: float = 0.0
    subject: str | None = None
    message: str | None = None
    rationale: str = ""


def _num(x: Any) -> Any:
    return x if isinstance(x, float) and math.isfinite(x) else repr(x)


def vet(
    ctx: CustomerContext,
    p: Proposal,
    eligibility: Eligibility,
    settings: GuardrailSettings,
    ref: ReferenceData,
) -> _Vetted:
    """Steps 2 and 3 (and the re-render of step 4) for one proposal."""
    out = _Vetted(ok=False)
    add = out.checks.append
    action = ref.action(ctx.segment, p.template_id)
    if action is None or action.channel != p.channel:
        why = "template_not_in_bank" if action is None else "channel_template_mismatch"
        add(
            _check(
                name="action_bank",
                verdict="failed",
                before=[p.channel, p.template_id],
                after=None,
                reason=why,
            )
        )
        out.failure = why
        return out
    add(_check(name="action_bank", verdict="pass", before=[p.channel, p.template_id], after=None, reason=""))
    if p.channel not in eligibility.allowed_channels:
        add(
            _check(
                name="channel_allowed",
                verdict="failed",
                before=p.channel,
                after=list(eligibility.allowed_channels),
                reason="channel_not_allowed",
            )
        )
        out.failure = "channel_not_allowed"
        return out
    add(_check(name="channel_allowed", verdict="pass", before=p.channel, after=None, reason=""))

    bounds = discount_bounds(action, settings.discount_cap)
    if bounds is None:
        add(
            _check(
                name="discount_clamp",
                verdict="failed",
                before=_num(p.discount_pct),
                after=None,
                reason="discount_infeasible",
            )
        )
        out.failure = "discount_infeasible"
        return out
    try:
        proposed = float(p.discount_pct)
    except (TypeError, ValueError):
        proposed = math.nan
    final, codes = clamp_discount(proposed, *bounds)
    add(
        _check(
            name="discount_clamp",
            verdict="fixed" if codes else "pass",
            before=_num(proposed),
            after=final,
            reason=",".join(codes),
        )
    )
    out.reasons += codes

    subject = strip_control(p.subject) if isinstance(p.subject, str) else None
    message = strip_control(p.message) if isinstance(p.message, str) else ""
    if subject != p.subject or message != p.message:
        add(
            _check(
                name="control_chars",
                verdict="fixed",
                before=None,
                after=None,
                reason="control_chars_stripped",
            )
        )
        out.reasons.append("control_chars_stripped")
    rationale = p.rationale if isinstance(p.rationale, str) else ""
    out.rationale = strip_control(rationale)[:RATIONALE_MAX]

    checker = get_checker(ref)
    template = ref.templates.get(p.template_id)
    try:  # the approved copy for this customer: what a draft may say that the customer also wrote
        approved_subject, approved_body = (
            render_template(template, ctx.first_name, final) if template else (None, "")
        )
    except TemplateRenderError:
        approved_subject, approved_body = None, ""
    approved = (approved_subject, approved_body)
    findings = checker.check(
        p.channel, subject or None, message, final, ctx.first_name, ctx.nps_comment, approved
    )
    if findings:
        add(
            _check(
                name="message",
                verdict="failed",
                before=message,
                after=None,
                reason=",".join(f"{c}:{e}" if e else c for c, e in findings),
            )
        )
        try:
            if template is None:
                raise TemplateRenderError(p.template_id, "not in message_templates")
            subject, message = render_template(template, ctx.first_name, final)
            again = checker.check(
                p.channel, subject, message, final, ctx.first_name, ctx.nps_comment, approved
            )
        except TemplateRenderError as exc:
            again, subject, message = (("render_error", str(exc)),), None, ""
        if again:
            add(
                _check(
                    name="message_rerender",
                    verdict="failed",
                    before=None,
                    after=message,
                    reason=",".join(c for c, _ in again),
                )
            )
            out.failure = "message_unfixable"
            return out
        add(
            _check(
                name="message_rerender",
                verdict="fixed",
                before=None,
                after=message,
                reason="message_rerendered",
            )
        )
        out.reasons.append("message_rerendered")
        out.reasons += sorted({c for c, _ in findings})
    else:
        add(_check(name="message", verdict="pass", before=None, after=None, reason=""))
    out.ok, out.channel, out.template_id, out.discount = True, p.channel, p.template_id, final
    out.subject, out.message = subject or None, message
    return out


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
    checks = list(eligibility.checks)
    reasons = list(eligibility.reasons)
    fields: dict[str, Any] = {
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

    def done(status: str) -> tuple[Decision, GuardrailReport]:
        decision = Decision.model_validate({**fields, "status": status, "reasons": reasons})
        report = GuardrailReport(decision_id=meta.decision_id, customer_id=ctx.customer_id, checks=checks)
        return decision, report

    if not eligibility.needs_proposal:
        return done(eligibility.status)

    vetted: _Vetted | None = None
    if proposal is not None:
        fields["proposed_discount_pct"] = _finite(proposal.discount_pct)
        vetted = vet(ctx, proposal, eligibility, settings, ref)
        checks += vetted.checks
    else:
        checks.append(
            _check(
                name="proposal",
                verdict="failed",
                before=None,
                after=None,
                reason=failure_reason or "no_proposal",
            )
        )
    if vetted is None or not vetted.ok:
        fields["propensity"] = 1.0  # the rules decide now, deterministically
        if meta.policy != "rules":
            why = (failure_reason or "no_proposal") if vetted is None else vetted.failure
            fields["policy"], fields["fallback_reason"] = f"{meta.policy}->rules", why
            reasons.append(f"fallback:{why}")
            checks.append(
                _check(name="fallback", verdict="fixed", before=meta.policy, after="rules", reason=why)
            )
        elif vetted is not None:  # a rules-mode proposal that fails: re-derive it from the rules policy
            reasons.append(f"rules_refused:{vetted.failure}")
            checks.append(
                _check(name="fallback", verdict="fixed", before="rules", after="rules", reason=vetted.failure)
            )
        safe = fallback.propose_one(ctx, eligibility.allowed_channels)
        if safe is None:
            reasons.append("rules_no_action")
            return done("no_action")
        if fields["proposed_discount_pct"] is None:
            fields["proposed_discount_pct"] = _finite(safe.discount_pct)
        vetted = vet(ctx, safe, eligibility, settings, ref)
        checks += vetted.checks
        if not vetted.ok:
            reasons.append(f"rules_failed:{vetted.failure}")
            return done("no_action")

    if (
        outcome is not None
        and proposal is not None
        and fields["policy"] == meta.policy
        and (vetted.template_id, vetted.discount) == (proposal.template_id, proposal.discount_pct)
    ):
        fields["action_pmf"] = list(outcome.pmf)  # the policy's own action: its distribution holds
    reasons += vetted.reasons
    fields.update(
        channel=vetted.channel,
        template_id=vetted.template_id,
        discount_pct=vetted.discount,
        subject=vetted.subject,
        message=vetted.message,
        rationale=vetted.rationale,
    )
    until = eligibility.channel_defer_until.get(vetted.channel)  # type: ignore[call-overload]
    if until is not None:
        fields["defer_until"] = until
        if "quiet_hours" not in reasons:
            reasons.append("quiet_hours")
        checks.append(
            _check(
                name="quiet_hours_channel",
                verdict="fixed",
                before=vetted.channel,
                after=until.isoformat(),
                reason="deferred",
            )
        )
        return done("deferred")
    return done("send")


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None

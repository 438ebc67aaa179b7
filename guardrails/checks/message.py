"""The message checks on the draft, and the re-render of the approved template when the draft fails.

What a draft may say: the clamped discount and no other figure (a number in digits is the discount's
or one the approved copy states), within the channel's length, nothing banned (the CRM's vocabulary
and the words a prompt describes a customer with are banned terms), no personal data, no other
customer's name, nothing lifted from the customer's own words, nothing copied from the action bank's
internal descriptions, and no value of the customer's record but the first name."""

from __future__ import annotations

from core.contracts import CustomerContext, GuardrailCheck
from core.errors import TemplateRenderError
from core.templates import render_template
from guardrails.checks.base import ProposalCheck, Vetting, entry
from guardrails.checks.words import Setting
from guardrails.message_checker import Finding, get_checker


class MessageCopy(ProposalCheck):
    """The draft against every message rule; its failure leaves the fix to the re-render."""

    name = "message"
    label = "message checks"

    def run(self, v: Vetting) -> GuardrailCheck:
        ctx, template = v.ctx, v.ref.templates.get(v.proposal.template_id)
        try:  # the approved copy for this customer: what a draft may say that the customer also wrote
            v.approved = render_template(template, ctx.first_name, v.discount) if template else (None, "")
        except TemplateRenderError:
            v.approved = (None, "")
        v.findings = _check(v, v.subject or None, v.message)
        if not v.findings:
            return entry(name=self.name, verdict="pass", before=None, after=None, reason="")
        reason = ",".join(f"{c}:{e}" if e else c for c, e in v.findings)
        return entry(name=self.name, verdict="failed", before=v.message, after=None, reason=reason)

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        if c.verdict == "pass":
            return "copy passes the message checks"
        return f"draft refused by the message checks ({c.reason})"


class MessageRerender(ProposalCheck):
    """A refused draft is replaced by the approved template rendered with the clamped discount."""

    name = "message_rerender"
    label = "message re-rendered"

    def run(self, v: Vetting) -> GuardrailCheck | None:
        if not v.findings:
            return None
        template = v.ref.templates.get(v.proposal.template_id)
        again: tuple[Finding, ...]
        try:
            if template is None:
                raise TemplateRenderError(v.proposal.template_id, "not in message_templates")
            v.subject, v.message = render_template(template, v.ctx.first_name, v.discount)
            again = _check(v, v.subject, v.message)
        except TemplateRenderError as exc:
            again, v.subject, v.message = (("render_error", str(exc)),), None, ""
        if again:
            v.failure = "message_unfixable"
            reason = ",".join(c for c, _ in again)
            return entry(name=self.name, verdict="failed", before=None, after=v.message, reason=reason)
        v.reasons.append("message_rerendered")
        v.reasons += sorted({c for c, _ in v.findings})
        return entry(
            name=self.name, verdict="fixed", before=None, after=v.message, reason="message_rerendered"
        )

    def explain(self, c: GuardrailCheck, s: Setting) -> str:
        if c.verdict == "fixed":
            return "copy re-rendered from the approved template"
        return f"the approved template fails the checks too ({c.reason})"


def _check(v: Vetting, subject: str | None, body: str) -> tuple[Finding, ...]:
    checker = get_checker(v.ref)
    ctx = v.ctx
    return checker.check(
        v.proposal.channel,
        subject,
        body,
        v.discount,
        ctx.first_name,
        ctx.nps_comment,
        v.approved,
        context_values(ctx),
    )


def context_values(ctx: CustomerContext) -> tuple[str, ...]:
    """What of the customer's record a draft may not repeat: everything a prompt could have shown
    that is not the first name and is specific enough to spot (labels with an underscore, ids)."""
    labels = [x for x in (ctx.rfm_segment, ctx.segment) if "_" in x]
    spend = [f"{ctx.lifetime_revenue:.2f}"] if ctx.lifetime_revenue >= 1 else []
    return (ctx.country, ctx.customer_id, ctx.timezone, *labels, *spend)

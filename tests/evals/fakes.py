"""A stand-in for the pipeline's `decide` (eligibility -> policy -> guardrails), contracts only."""

from __future__ import annotations

from datetime import UTC, datetime

from core.actions import allowed_actions
from core.contracts import ActionProbability, CustomerContext, Decision, GuardrailReport, LLMAttempt
from core.reference import load_reference
from evals.datasets.golden import load_golden
from evals.harness import PolicySpec
from testing.factories import make_context

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)


def contexts_for(customer_ids, segments) -> dict[str, CustomerContext]:
    """Customers like the first golden case (its figures whatever the segment), named Mia."""
    like = load_golden()[0].context.model_dump()
    return {
        c: make_context(**(like | {"customer_id": c, "segment": s, "first_name": "Mia"}))
        for c, s in zip(customer_ids, segments, strict=True)
    }


def fake_decide(spec: PolicySpec, contexts: list[CustomerContext]) -> list[tuple[Decision, GuardrailReport]]:
    ref = load_reference()
    out = []
    for i, ctx in enumerate(contexts):
        did = f"{spec.name}-{ctx.customer_id}"
        report = GuardrailReport(decision_id=did, customer_id=ctx.customer_id)
        common = dict(
            decision_id=did,
            run_id="r1",
            as_of=AS_OF,
            customer_id=ctx.customer_id,
            segment=ctx.segment,
            goal=spec.goal,
            arm="treatment",
            context_hash=ctx.context_hash(),
            prompt_version=spec.prompt_version,
        )
        allowed = [a for a in ref.actions_for(ctx.segment) if ctx.consent.allows(a.channel)]
        if ctx.globally_suppressed or not allowed:
            report.add("consent", "failed", reason="no consented channel")
            out.append(
                (Decision(status="suppressed", policy="rules", reasons=["no_consent"], **common), report)
            )
            continue
        if spec.mode == "random":  # uniform over the allowed actions, its distribution logged
            acts = allowed_actions(ctx.segment, [a.channel for a in allowed], spec.discount_cap, ref)
            p = 1.0 / len(acts)
            action, discount = acts[i % len(acts)]
            pmf = [
                ActionProbability(template_id=a.template_id, discount_pct=d, probability=p) for a, d in acts
            ]
            out.append(
                (
                    Decision(status="send", policy="random", channel=action.channel,
                             template_id=action.template_id, discount_pct=discount, message="Hi Mia",
                             propensity=p, action_pmf=pmf, **common),
                    report,
                )
            )  # fmt: skip
            continue
        # rules: the most generous template the customer may get; llm: prefers sms and asks for 20%
        pick = max(allowed, key=lambda a: (a.max_discount_pct, a.channel == "email"))
        asked = min(spec.discount_cap, pick.max_discount_pct)
        policy, attempts, fallback = "rules", [], None
        if spec.mode == "llm":
            pick = next((a for a in allowed if a.channel == "sms"), pick)
            asked = 20.0
            attempts = [
                LLMAttempt(attempt=1, prompt_tokens=400, completion_tokens=60, latency_ms=800.0 + i % 7)
            ]
            policy = "llm->rules" if i % 10 == 0 else "llm"
            fallback = "message_check_failed" if i % 10 == 0 else None
        final = float(min(asked, spec.discount_cap, pick.max_discount_pct))
        if final != asked:
            report.add("discount_clamp", "fixed", before=asked, after=final)
        report.add("message_length", "pass")
        offer = f" {final:g}% off your next order." if final else ""
        msg = f"Hi {ctx.first_name}, we miss you.{offer} Reply STOP to opt out"
        out.append(
            (
                Decision(
                    status="send",
                    policy=policy,
                    channel=pick.channel,
                    template_id=pick.template_id,
                    discount_pct=final,
                    message=msg,
                    attempts=attempts,
                    fallback_reason=fallback,
                    model="fake" if attempts else None,
                    **common,
                ),
                report,
            )
        )
    return out

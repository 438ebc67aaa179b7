"""The rules policy: a deterministic, goal-aware strategy per segment, and the fallback of the LLM.

Its output is an approved template rendered with the final discount, so it passes the message
checks by construction (tests assert this for every template, segment and goal).

Strategy (GOAL=90d_clv weighs the cost of a discount against the value it can bring back):
- high_value_lapse_risk: clearly lapsing (recency >= 1.5x the usual gap between orders, or no
  usual gap known and 45+ days quiet) -> winback with up to 5% (within the cap): these customers
  rarely come back unprompted, so the discount is mostly spent on orders that would not happen;
  only mildly overdue -> a VIP check-in without discount (they would likely return anyway).
- new_users_first_week_intent: onboarding tips, no discount, unless strongly engaged without an
  order (no order yet, and 2+ add-to-carts or 3+ sessions this week with 10+ product views) ->
  first_order_offer with up to 10%.
- churn_rescue_nps: customer-success follow-up with a targeted offer: 10% for a strong detractor
  (NPS <= 3) worth 500+ in lifetime revenue, else 5%; no offer for a one-order customer under 50.
GOAL=engagement favours reach: the same families of templates, never a discount.
Channel: the preferred channel if allowed and the chosen family has a template on it, else email,
else sms, else push.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from agent.policies.registry import BuildInputs
from core.actions import discount_bounds
from core.contracts import (
    ActionSpec,
    Channel,
    CustomerContext,
    GuardrailSettings,
    PolicyOutcome,
    Proposal,
)
from core.policy import PolicyItem, Progress
from core.policy_kinds import RULES
from core.reference import ReferenceData
from core.templates import render_template

CHANNEL_ORDER: tuple[Channel, ...] = ("email", "sms", "push")

# segment -> family -> channel -> template
ROUTES: dict[str, dict[str, dict[str, str]]] = {
    "high_value_lapse_risk": {
        "offer": {"email": "winback_soft", "sms": "winback_sms", "push": "winback_push"},
        "plain": {"email": "vip_checkin", "sms": "winback_sms", "push": "winback_push"},
        "reach": {"email": "winback_soft", "sms": "winback_sms", "push": "winback_push"},
    },
    "new_users_first_week_intent": {
        "offer": {"email": "first_order_offer", "sms": "first_order_sms", "push": "onboarding_push"},
        "plain": {"email": "onboarding_tips", "sms": "first_order_sms", "push": "onboarding_push"},
        "reach": {"email": "onboarding_tips", "sms": "first_order_sms", "push": "onboarding_push"},
    },
    "churn_rescue_nps": {
        "offer": {"email": "cs_followup_offer", "sms": "cs_apology_sms", "push": "cs_checkin_push"},
        "plain": {"email": "cs_followup", "sms": "cs_apology_sms", "push": "cs_checkin_push"},
        "reach": {"email": "cs_followup", "sms": "cs_apology_sms", "push": "cs_checkin_push"},
    },
}


def strategy(ctx: CustomerContext, goal: str) -> tuple[str, float, str]:
    """(template family, target discount %, rationale) for a customer and goal."""
    seg = ctx.segment
    if goal == "engagement":
        return "reach", 0.0, f"goal=engagement: reach {seg} on their preferred channel, no discount"
    if seg == "high_value_lapse_risk":
        gap, rec = ctx.usual_gap_days, ctx.recency_days
        if rec is not None and gap:
            lapsing, how = rec >= 1.5 * gap, f"{rec / gap:.1f}x their usual {gap:.0f}-day gap"
        else:
            lapsing, how = (rec or 0) >= 45, f"{rec} days since last order"
        if lapsing:
            return (
                "offer",
                5.0,
                f"high value (revenue {ctx.lifetime_revenue:.0f}) and lapsing ({how}): "
                "a small win-back offer pays for itself",
            )
        return "plain", 0.0, f"high value but only mildly overdue ({how}): check in without a discount"
    if seg == "new_users_first_week_intent":
        engaged = ctx.orders_count == 0 and (
            ctx.add_to_cart_30d >= 2 or (ctx.sessions_7d >= 3 and ctx.product_views_30d >= 10)
        )
        if engaged:
            return (
                "offer",
                10.0,
                (
                    f"new user engaged without an order ({ctx.add_to_cart_30d} add-to-carts, "
                    f"{ctx.sessions_7d} sessions this week): a first-order offer converts intent"
                ),
            )
        return (
            "plain",
            0.0,
            "new user: onboarding tips first; a discount would be spent on intent not yet shown",
        )
    if ctx.orders_count <= 1 and ctx.lifetime_revenue < 50:
        return (
            "plain",
            0.0,
            "detractor with little value at stake: customer-success follow-up without an offer",
        )
    strong = ctx.nps_score is not None and ctx.nps_score <= 3 and ctx.lifetime_revenue >= 500
    return (
        "offer",
        10.0 if strong else 5.0,
        (
            f"detractor (NPS {ctx.nps_score}) worth {ctx.lifetime_revenue:.0f}: customer-success follow-up "
            f"with a {'stronger' if strong else 'targeted'} offer"
        ),
    )


class RulesPolicy:
    """Deterministic next-best action, and the fallback the guardrails use. `propose_one` returns
    None when no approved action fits the allowed channels."""

    name: str = RULES.name
    model: str | None = None
    prompt_version: str | None = None

    def __init__(self, settings: GuardrailSettings, ref: ReferenceData) -> None:
        self.settings, self.ref = settings, ref

    def _candidates(
        self, ctx: CustomerContext, family: str, allowed: Sequence[str], ref: ReferenceData
    ) -> Iterator[ActionSpec]:
        bank = ref.bank
        routes = ROUTES.get(ctx.segment, {}).get(family, {})
        order = [ctx.preferred_channel, *(c for c in CHANNEL_ORDER if c != ctx.preferred_channel)]
        for ch in order:
            if ch in allowed and ch in routes:
                action = bank.get((ctx.segment, routes[ch]))
                if action is not None and action.channel == ch:
                    yield action
        for action in ref.actions_for(ctx.segment):  # routes that no longer fit the bank: any banked action
            if action.channel in allowed and (ctx.segment, action.template_id) in bank:
                yield action

    async def propose(
        self, batch: Sequence[PolicyItem], progress: Progress | None = None
    ) -> list[PolicyOutcome]:
        out = [
            PolicyOutcome(customer_id=ctx.customer_id, proposal=self.propose_one(ctx, elig.allowed_channels))
            for ctx, elig in batch
        ]
        if progress and out:
            progress(len(out))
        return out

    def stats(self) -> dict[str, int]:
        return {}

    def propose_one(self, ctx: CustomerContext, allowed_channels: Sequence[Channel]) -> Proposal | None:
        if not allowed_channels:
            return None
        settings, ref = self.settings, self.ref
        family, target, rationale = strategy(ctx, settings.goal)
        for action in self._candidates(ctx, family, allowed_channels, ref):
            bounds = discount_bounds(action, settings.discount_cap)
            if bounds is None:
                continue
            discount = float(min(max(math.floor(target), bounds[0]), bounds[1]))
            subject, body = render_template(ref.templates[action.template_id], ctx.first_name, discount)
            return Proposal(
                channel=action.channel,
                template_id=action.template_id,
                discount_pct=discount,
                subject=subject,
                message=body,
                rationale=f"rules: {rationale}",
            )
        return None


def build(inputs: BuildInputs) -> RulesPolicy:
    return RulesPolicy(inputs.guard, inputs.ref)

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
from datetime import UTC, date, datetime
from typing import Any

from agent.contracts import (
    GOALS,
    SEGMENTS,
    ActionSpec,
    Channel,
    CustomerContext,
    DecisionMeta,
    Proposal,
    stable_hash,
)
from agent.reference import ReferenceData, load_reference
from guardrails._fast import build
from guardrails.checks import discount_bounds
from guardrails.errors import UnknownGoalError, UnknownSegmentError
from guardrails.message import render_template
from guardrails.settings import GuardrailSettings

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
    """Deterministic next-best action. `propose` returns None when no approved action fits the
    allowed channels."""

    def __init__(self) -> None:
        self._actions: dict[int, tuple[ReferenceData, dict[tuple[str, str], ActionSpec]]] = {}

    def _bank(self, ref: ReferenceData) -> dict[tuple[str, str], ActionSpec]:
        hit = self._actions.get(id(ref))
        if hit is None or hit[0] is not ref:
            hit = (
                ref,
                {(a.segment, a.template_id): a for a in ref.actions if a.template_id in ref.templates},
            )
            self._actions[id(ref)] = hit
        return hit[1]

    def _candidates(
        self, ctx: CustomerContext, family: str, allowed: Sequence[str], ref: ReferenceData
    ) -> Iterator[ActionSpec]:
        bank = self._bank(ref)
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

    def propose(
        self,
        ctx: CustomerContext,
        allowed_channels: Sequence[Channel],
        *,
        settings: GuardrailSettings,
        ref: ReferenceData,
    ) -> Proposal | None:
        if not allowed_channels:
            return None
        family, target, rationale = strategy(ctx, settings.goal)
        for action in self._candidates(ctx, family, allowed_channels, ref):
            bounds = discount_bounds(action, settings.discount_cap)
            if bounds is None:
                continue
            discount = float(min(max(math.floor(target), bounds[0]), bounds[1]))
            subject, body = render_template(ref.templates[action.template_id], ctx.first_name, discount)
            return build(
                Proposal,
                {
                    "channel": action.channel,
                    "template_id": action.template_id,
                    "discount_pct": discount,
                    "subject": subject,
                    "message": body,
                    "rationale": f"rules: {rationale}",
                },
            )
        return None


# --- the documented Python API ----------------------------------------------------------------------

TYPICAL: dict[str, dict[str, Any]] = {
    "high_value_lapse_risk": dict(
        orders_count=9,
        lifetime_revenue=1450.0,
        avg_order_value=161.0,
        recency_days=75,
        usual_gap_days=30.0,
        rfm_segment="at_risk_champion",
        sessions_7d=0,
        sessions_30d=1,
        product_views_30d=2,
        add_to_cart_30d=0,
        nps_score=8,
        tenure_days=900,
    ),
    "new_users_first_week_intent": dict(
        orders_count=0,
        lifetime_revenue=0.0,
        avg_order_value=0.0,
        recency_days=None,
        usual_gap_days=None,
        rfm_segment="new",
        sessions_7d=2,
        sessions_30d=2,
        product_views_30d=6,
        add_to_cart_30d=0,
        nps_score=None,
        tenure_days=4,
    ),
    "churn_rescue_nps": dict(
        orders_count=4,
        lifetime_revenue=380.0,
        avg_order_value=95.0,
        recency_days=20,
        usual_gap_days=40.0,
        rfm_segment="needs_attention",
        sessions_7d=1,
        sessions_30d=3,
        product_views_30d=5,
        add_to_cart_30d=0,
        nps_score=4,
        nps_comment="Delivery was late and support never answered.",
        tenure_days=400,
    ),
}


def typical_context(segment: str, **overrides: Any) -> CustomerContext:
    """A typical customer of a segment, consenting on every channel, preferring email."""
    base: dict[str, Any] = dict(
        customer_id=f"typical-{segment}",
        segment=segment,
        segment_reason="typical customer",
        scores={s: float(s == segment) for s in SEGMENTS},
        first_name="Olivia",
        country="GB",
        timezone="UTC",
        signup_date=date(2023, 1, 1),
        consent={"email": True, "sms": True, "push": True},
        preferred_channel="email",
        last_contact={},
        **TYPICAL[segment],
    )
    base.update(overrides)
    return CustomerContext.model_validate(base)


def next_best_action(
    segment: str, goal: str = "90d_clv", discount_cap: float = 5.0, suppress_hours: float = 24, **kwargs: Any
) -> dict[str, Any]:
    """The next-best action, through every guardrail, for a typical customer of `segment`.

    >>> next_best_action("high_value_lapse_risk", goal="90d_clv", discount_cap=5.0)["template"]
    'winback_soft'

    Keyword arguments override the typical customer's fields (e.g. `preferred_channel="sms"`,
    `consent={"email": False, "sms": True, "push": True}`), or pass `as_of` (default: now, UTC),
    `enforce_quiet_hours` or `ref`. Holdout is off here: this describes the action, not the arm.
    Returns channel, template, discount_pct, subject, message, rationale, status, reasons, policy.
    Raises ValueError (UnknownSegmentError/UnknownGoalError) naming the valid values.
    """
    from guardrails.eligibility import check_eligibility
    from guardrails.engine import finalize

    if segment not in SEGMENTS:
        raise UnknownSegmentError(segment, SEGMENTS)
    if goal not in GOALS:
        raise UnknownGoalError(goal, GOALS)
    as_of = kwargs.pop("as_of", None) or datetime.now(UTC)
    ref = kwargs.pop("ref", None) or load_reference()
    quiet = kwargs.pop("enforce_quiet_hours", True)
    unknown = set(kwargs) - set(CustomerContext.model_fields)
    if unknown:
        valid = sorted({"as_of", "ref", "enforce_quiet_hours", *CustomerContext.model_fields})
        raise ValueError(f"unknown argument(s) {sorted(unknown)}; valid: {', '.join(valid)}")
    settings = GuardrailSettings(
        goal=goal,  # type: ignore[arg-type]
        discount_cap=discount_cap,
        suppress_hours=suppress_hours,
        global_holdout_pct=0,
        segment_holdout_pct=0,
        enforce_quiet_hours=quiet,
    )
    ctx = typical_context(segment, **kwargs)
    elig = check_eligibility(ctx, [], as_of=as_of, settings=settings, ref=ref)
    meta = DecisionMeta(
        decision_id=stable_hash([as_of.date().isoformat(), ctx.customer_id, "rules"]),
        run_id="api",
        as_of=as_of,
        goal=goal,  # type: ignore[arg-type]
        policy="rules",
    )
    proposal = (
        _API_RULES.propose(ctx, elig.allowed_channels, settings=settings, ref=ref)
        if elig.needs_proposal
        else None
    )
    decision, _ = finalize(ctx, proposal, eligibility=elig, meta=meta, settings=settings, ref=ref)
    return {
        "channel": decision.channel,
        "template": decision.template_id,
        "discount_pct": decision.discount_pct,
        "subject": decision.subject,
        "message": decision.message,
        "rationale": decision.rationale,
        "status": decision.status,
        "reasons": decision.reasons,
        "policy": decision.policy,
        "defer_until": decision.defer_until,
    }


_API_RULES = RulesPolicy()

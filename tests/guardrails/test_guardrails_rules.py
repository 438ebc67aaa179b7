"""The rules policy and the documented next_best_action API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from guardrail_factories import make_ctx

from agent.api import next_best_action
from agent.policies.rules import RulesPolicy
from core.contracts import GuardrailSettings
from core.errors import ConfigError, UserError
from core.reference import load_reference
from guardrails.errors import ChannelMismatchError

NOON = datetime(2024, 5, 1, 12, tzinfo=UTC)
ALL = ["email", "sms", "push"]


def propose(ctx, allowed=ALL, **settings):
    return RulesPolicy(GuardrailSettings(**settings), load_reference()).propose_one(ctx, allowed)


def test_next_best_action_contract():
    nba = next_best_action("high_value_lapse_risk", goal="90d_clv", discount_cap=5.0, as_of=NOON)
    assert {k: nba[k] for k in ("channel", "template", "discount_pct")} == {
        "channel": "email",
        "template": "winback_soft",
        "discount_pct": 5.0,
    }
    assert nba["subject"] and "5% off" in nba["message"] and nba["rationale"] and nba["status"] == "send"
    assert next_best_action("new_users_first_week_intent", as_of=NOON)["template"] == "onboarding_tips"
    churn = next_best_action("churn_rescue_nps", as_of=NOON)
    assert churn["template"] == "cs_followup_offer" and churn["discount_pct"] == 5.0


def test_next_best_action_validates():
    with pytest.raises(
        ValueError, match="high_value_lapse_risk, new_users_first_week_intent, churn_rescue_nps"
    ):
        next_best_action("vip")
    with pytest.raises(ConfigError, match="'90d_clv' or 'engagement'"):
        next_best_action("churn_rescue_nps", goal="revenue")
    with pytest.raises(UserError, match="unknown argument"):
        next_best_action("churn_rescue_nps", colour="red")
    with pytest.raises(ConfigError, match="from 0 to 100"):
        next_best_action("churn_rescue_nps", discount_cap=float("inf"))


def test_cap_and_bank_bound_the_discount():
    assert next_best_action("high_value_lapse_risk", discount_cap=0, as_of=NOON)["discount_pct"] == 0
    assert next_best_action("high_value_lapse_risk", discount_cap=2.5, as_of=NOON)["discount_pct"] == 2
    strong = dict(nps_score=1, lifetime_revenue=900.0)
    assert next_best_action("churn_rescue_nps", discount_cap=50, as_of=NOON, **strong)["discount_pct"] == 10


def test_goal_engagement_never_discounts():
    for seg in ("high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps"):
        nba = next_best_action(seg, goal="engagement", discount_cap=50, as_of=NOON)
        assert nba["discount_pct"] == 0 and "%" not in nba["message"]


def test_clv_weighs_discount_against_value():
    mildly_overdue = make_ctx(recency_days=35, usual_gap_days=30.0)
    assert propose(mildly_overdue).template_id == "vip_checkin"
    lapsing = make_ctx(recency_days=90, usual_gap_days=30.0)
    assert (propose(lapsing).template_id, propose(lapsing).discount_pct) == ("winback_soft", 5.0)
    engaged_new = make_ctx(segment="new_users_first_week_intent", add_to_cart_30d=3)
    p = propose(engaged_new, discount_cap=20)
    assert (p.template_id, p.discount_pct) == ("first_order_offer", 10.0)
    assert propose(make_ctx(segment="new_users_first_week_intent")).template_id == "onboarding_tips"
    tiny = make_ctx(segment="churn_rescue_nps", orders_count=1, lifetime_revenue=20.0)
    assert propose(tiny).template_id == "cs_followup"


def test_channel_routing_by_preference_and_consent():
    assert propose(make_ctx(preferred_channel="sms")).channel == "sms"
    assert propose(make_ctx(preferred_channel="push")).template_id == "winback_push"
    assert propose(make_ctx(preferred_channel="sms"), allowed=["email", "push"]).channel == "email"
    assert propose(make_ctx(), allowed=["push"]).template_id == "winback_push"
    assert propose(make_ctx(), allowed=[]) is None
    # new users have no sms template in the onboarding family's email slot: email -> sms -> push order holds
    assert (
        propose(make_ctx(segment="new_users_first_week_intent"), allowed=["sms"]).template_id
        == "first_order_sms"
    )


def test_settings_validation():
    with pytest.raises(ValueError):
        GuardrailSettings(discount_cap=101)
    with pytest.raises(ValueError):
        GuardrailSettings(discount_cap=float("nan"))
    with pytest.raises(ValueError):
        GuardrailSettings(suppress_hours=-1)
    with pytest.raises(ValueError):
        GuardrailSettings(unknown=1)


def test_errors_carry_fields():
    from core.errors import ReferenceConfigError

    e = ChannelMismatchError("winback_soft", "sms", "email")
    assert (e.template_id, e.bank_channel, e.template_channel) == ("winback_soft", "sms", "email")
    assert isinstance(e, ReferenceConfigError)


def test_reference_validation_names_the_problem():
    import dataclasses

    from core.contracts import ActionSpec, MessageTemplate
    from guardrails.config import validate_reference
    from guardrails.errors import TemplateCheckError, TemplateRenderError, UnknownTemplateError

    ref = load_reference()
    validate_reference(ref)  # the shipped seeds are consistent
    ghost = ActionSpec(
        segment="churn_rescue_nps",
        template_id="ghost",
        channel="email",
        min_discount_pct=0,
        max_discount_pct=0,
        description="x",
    )
    with pytest.raises(UnknownTemplateError, match="ghost"):
        validate_reference(dataclasses.replace(ref, actions=(*ref.actions, ghost)))
    t = ref.templates["winback_push"]
    for body, err in [("{{ first_nam }}", TemplateRenderError), ("Free, guaranteed!", TemplateCheckError)]:
        bad = MessageTemplate(template_id=t.template_id, channel=t.channel, subject=None, body=body)
        with pytest.raises(err):
            validate_reference(dataclasses.replace(ref, templates={**ref.templates, t.template_id: bad}))
    sms = dataclasses.replace(
        ref, templates={**ref.templates, "winback_push": t.model_copy(update={"channel": "sms"})}
    )
    with pytest.raises(ChannelMismatchError):
        validate_reference(sms)


def test_a_bad_seed_value_is_one_line_naming_the_file_row_and_column(tmp_path):
    import shutil

    from core.reference import SEEDS_DIR

    for f in SEEDS_DIR.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    with open(tmp_path / "banned_terms.csv", "a", encoding="utf-8") as fh:
        fh.write("bogus term,bogus_category\n")
    lines = (tmp_path / "banned_terms.csv").read_text(encoding="utf-8").count("\n")
    with pytest.raises(UserError, match=rf"banned_terms.csv line {lines}: category: .*'bogus_category'") as e:
        load_reference(tmp_path)
    assert "\n" not in str(e.value) and e.value.exit_code == 2
    (tmp_path / "channel_limits.csv").unlink()
    with pytest.raises(UserError, match=r"no seed file .*channel_limits.csv: restore it"):
        load_reference(tmp_path)

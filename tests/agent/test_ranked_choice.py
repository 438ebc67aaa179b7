"""A prompt written on top of the learned ranking (v3) offers numbered actions, and the answer can
only name one of them: the response model's `choice` is one of 1..k (a grammar on llama-server, a
pydantic Literal with reasks elsewhere), and the proposal is the action that number stands for.
The cassette case replays a recording of the real embedded model answering a v3 prompt."""

from __future__ import annotations

import json

import numpy as np
import pytest
from agent_cases import CASES
from cassette_support import RECORD, llm_test_settings, llm_vcr, model_server, require_cassette
from pydantic import ValidationError

from agent.llm import (
    LLMClient,
    as_proposal,
    choice_model_for,
    response_model_for,
    response_model_for_offer,
    response_model_for_prompt,
)
from agent.prompts import render_prompt
from core.reference import load_reference

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
REF = load_reference()
RANKING = [
    {"template_id": "winback_soft", "channel": "email", "discount_pct": 5.0, "value": "31.2"},
    {"template_id": "vip_checkin", "channel": "email", "discount_pct": 0.0, "value": "28.9"},
    {"template_id": "winback_sms", "channel": "sms", "discount_pct": 0.0, "value": "27.4"},
]


def v3(ctx=CASES["hvl_normal"], ranking=RANKING, version="v3"):
    return render_prompt(
        ctx,
        version=version,
        ref=REF,
        allowed_channels=["email", "sms", "push"],
        goal="90d_clv",
        discount_cap=5.0,
        ranking=ranking,
    )


def test_the_ranking_prompt_offers_its_ranked_actions_in_order() -> None:
    p = v3()
    assert p.choices == tuple((r["template_id"], r["channel"], r["discount_pct"]) for r in RANKING)
    assert "1. template_id=winback_soft channel=email discount_pct=5" in p.user
    assert v3(version="v1").choices == ()  # a prompt that shows no ranking offers none
    v1 = v3(version="v1")
    assert response_model_for_prompt(CASES["hvl_normal"], v1, REF) is response_model_for_offer(
        "high_value_lapse_risk", v1.offered, REF
    )


def test_a_prompt_without_a_ranking_allows_exactly_the_actions_it_lists() -> None:
    # the segment's whole bank let SmolLM2 name a template on an unreachable channel, propose above
    # the run's cap (114 of 285 demo sends clamped) and leave an email's subject out (138 of 285)
    whole = response_model_for("high_value_lapse_risk", REF).model_json_schema()
    assert whole["properties"]["discount_pct"]["maximum"] == 10 and "subject" not in whole["required"]

    def schema(channels, cap=5.0):
        p = render_prompt(
            CASES["hvl_normal"],
            version="v1",
            ref=REF,
            allowed_channels=channels,
            goal="90d_clv",
            discount_cap=cap,
        )
        for template_id, _channel, _discount in p.offered:
            assert f"template_id={template_id} " in p.system  # what the prompt lists
        return response_model_for_prompt(CASES["hvl_normal"], p, REF).model_json_schema()

    emails = schema(["email"], cap=5.0)
    assert emails["properties"]["template_id"]["enum"] == ["vip_checkin", "winback_soft"]
    assert emails["properties"]["discount_pct"]["maximum"] == 5  # the run's cap, as the prompt says
    assert "subject" in emails["required"] and emails["properties"]["subject"]["minLength"] == 1
    push = schema(["push"])
    assert push["properties"]["template_id"]["const"] == "winback_push"
    assert push["properties"]["discount_pct"]["maximum"] == 0  # winback_push carries no discount
    assert "subject" not in push["properties"]
    assert push["properties"]["message"]["maxLength"] == REF.channel_limits["push"].max_chars
    mixed = schema(["email", "sms", "push"], cap=0.0)
    assert mixed["properties"]["discount_pct"]["maximum"] == 0 and "subject" not in mixed["required"]
    assert len(mixed["properties"]["template_id"]["enum"]) == 4


def test_the_answer_can_only_name_a_ranked_number() -> None:
    model = response_model_for_prompt(CASES["hvl_normal"], v3(), REF)
    schema = model.model_json_schema()
    assert schema["properties"]["choice"]["enum"] == [1, 2, 3]
    assert list(schema["properties"])[0] == "choice"  # chosen first, then written for
    assert "template_id" not in schema["properties"] and "discount_pct" not in schema["properties"]
    # every text is bounded, so the grammar ends it (email offered: its 80-character subject)
    assert schema["properties"]["subject"]["maxLength"] == 80
    assert schema["properties"]["message"]["maxLength"] == 400
    assert schema["properties"]["rationale"]["maxLength"] <= 200
    assert set(schema["required"]) >= {"choice", "subject", "message", "rationale"}
    with pytest.raises(ValidationError):
        model.model_validate({"choice": 4, "subject": "", "message": "Hi Emma", "rationale": ""})
    with pytest.raises(ValidationError):  # extra fields forbidden
        model.model_validate(
            {"choice": 1, "subject": "", "message": "Hi", "rationale": "", "discount_pct": 50}
        )
    push_only = v3(
        ranking=[{"template_id": "winback_push", "channel": "push", "discount_pct": 0.0, "value": "9"}]
    )
    bounded = response_model_for_prompt(CASES["hvl_normal"], push_only, REF).model_json_schema()["properties"]
    assert bounded["subject"]["maxLength"] == 0 and bounded["message"]["maxLength"] == 180  # push's limits


def test_a_choice_becomes_the_action_it_names() -> None:
    answer = choice_model_for(3).model_validate(
        {
            "choice": 3,
            "subject": "Written first",
            "message": "Emma, we kept your favourites.",
            "rationale": "sms",
        }
    )
    proposal = as_proposal(answer, v3())
    assert (proposal.template_id, proposal.channel, proposal.discount_pct) == (
        "winback_sms",
        "sms",
        0.0,
    )
    assert proposal.message == "Emma, we kept your favourites." and proposal.rationale == "sms"
    assert proposal.subject is None  # an sms has no subject, whatever was written before the choice


def test_cassette_the_embedded_model_picks_within_the_ranking() -> None:
    """Recorded against SmolLM2 on llama-server: the request constrains `choice` to 1..3 and the
    answer, whatever the model writes, is one of the three ranked actions."""
    require_cassette("ranked_choice.yaml")
    ctx, prompt = CASES["hvl_normal"], v3()

    async def ask(url: str):
        client = LLMClient(llm_test_settings(), endpoint=url, ref=REF)
        try:
            return await client.propose(ctx, prompt)
        finally:
            await client.aclose()

    import asyncio

    with model_server() as url, llm_vcr().use_cassette("ranked_choice.yaml") as cass:
        outcome = asyncio.run(ask(url))
        bodies = [json.loads(r.body) for r in cass.requests]
    assert outcome.failure_reason is None, outcome.failure_reason
    p = outcome.proposal
    assert p is not None and (p.template_id, p.channel, p.discount_pct) in prompt.choices
    schema = bodies[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["choice"]["enum"] == [1, 2, 3]
    if not RECORD:
        assert cass.play_count == len(outcome.attempts) >= 1


class _Ranker:
    """Fixed values over the real action catalog (what the learned policy's `ranking` returns), with
    the rules' action kept on top by `greedy_order` like LearnedPolicy does."""

    model = "gbm-test"

    def __init__(self, values: dict[tuple[str, float], float], incumbent: tuple[str, float] | None = None):
        from agent.learned.actions import default_catalog

        self.catalog = default_catalog()
        n = len(self.catalog.template_ids)
        self.values = np.full((1, n), np.nan)
        for a in range(n):
            key = (self.catalog.template_ids[a], float(self.catalog.discounts[a]))
            if key in values:
                self.values[0, a] = values[key]
        self.incumbent = incumbent

    def ranking(self, batch):
        return self.values.copy(), np.isfinite(self.values)

    def greedy_order(self, batch, values, allowed):
        out = values.copy()
        if self.incumbent is not None:
            a = next(
                i
                for i in range(out.shape[1])
                if (self.catalog.template_ids[i], float(self.catalog.discounts[i])) == self.incumbent
            )
            out[0, a] = np.nanmax(values) + 1
        return out


def _policy(ranker: _Ranker, **llm: object):
    from agent.policies import LLMEndpoint, LLMPolicy
    from core.config import LLMSettings
    from core.contracts import GuardrailSettings

    settings = LLMSettings.model_validate(llm)
    return LLMPolicy(
        settings,
        guard=GuardrailSettings(discount_cap=5.0),
        prompt_version="v3",
        ref=REF,
        endpoint=LLMEndpoint(settings),
        cache=None,
        ranker=ranker,  # type: ignore[arg-type]
    )


def test_the_llm_chooses_only_between_near_ties_of_the_model() -> None:
    values = {("winback_soft", 5.0): 30.0, ("winback_soft", 0.0): 29.0, ("vip_checkin", 0.0): 24.0}
    ranks = _policy(_Ranker(values)).rankings([(CASES["hvl_normal"], None)])[0]
    # 29 is within 5% of 30 and offered; 24 is 20% below and is not: the model is sure of that one
    assert [(r["template_id"], r["discount_pct"]) for r in ranks] == [
        ("winback_soft", 5.0),
        ("winback_soft", 0.0),
    ]
    wide = _policy(_Ranker(values), ranking_within=0.5, ranking_top_k=2).rankings(
        [(CASES["hvl_normal"], None)]
    )[0]
    assert len(wide) == 2  # at most ranking_top_k, however close
    only = _policy(_Ranker(values), ranking_within=0.0).rankings([(CASES["hvl_normal"], None)])[0]
    assert len(only) == 1  # no tolerance: the LLM only writes the model's choice


def test_number_one_is_the_learned_policys_own_choice() -> None:
    """The rules' action kept by the switch margin is number 1, even when the model values another a
    little higher; the values shown are the model's own."""
    values = {("winback_soft", 5.0): 30.0, ("vip_checkin", 0.0): 29.5}
    ranks = _policy(_Ranker(values, incumbent=("vip_checkin", 0.0))).rankings([(CASES["hvl_normal"], None)])[
        0
    ]
    assert [(r["template_id"], r["value"]) for r in ranks] == [
        ("vip_checkin", "29.5"),
        ("winback_soft", "30"),
    ]


def test_the_decision_cache_key_includes_the_answer_schema(monkeypatch) -> None:
    # the same prompt with a narrower schema is a different question: an answer cached under the
    # segment's whole bank (a discount above the cap, no subject) must not be reused
    from agent import llm
    from core.config import LLMSettings

    settings, ctx = LLMSettings(cache=True), CASES["hvl_normal"]
    p = render_prompt(
        ctx, version="v1", ref=REF, allowed_channels=["email"], goal="90d_clv", discount_cap=5.0
    )
    narrowed = llm.proposal_key(settings, ctx, p, REF)
    assert narrowed == llm.proposal_key(settings, ctx, p, REF)
    monkeypatch.setattr(llm, "response_model_for_prompt", lambda c, pr, r: response_model_for(c.segment, r))
    assert llm.proposal_key(settings, ctx, p, REF) != narrowed

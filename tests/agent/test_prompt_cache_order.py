"""The prompts are laid out for the model server's prefix cache: everything shared across the customers
of one segment (instructions, goal, rules, the segment's allowed actions) comes first and is
byte-identical, and the customer's own data comes last. A template change that moves a customer
field ahead of the shared part fails here (llama-server then re-reads the whole prompt per decision:
bench/bench_llm_embedded.py prints the reuse)."""

from __future__ import annotations

import pytest
from agent_cases import CASES, INJECTION

from agent.prompts import available_versions, render_prompt
from core.reference import load_reference

REF = load_reference()
VERSIONS = available_versions()


def render(ctx, version: str, channels=("email", "sms", "push")):
    return render_prompt(
        ctx, version=version, ref=REF, allowed_channels=list(channels), goal="90d_clv", discount_cap=5.0
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_everything_before_the_customer_is_byte_identical_within_a_segment(version: str) -> None:
    a = CASES["churn_normal"]
    b = a.model_copy(
        update={
            "customer_id": "C9",
            "first_name": "Noah",
            "segment_reason": "NPS 1 (detractor) 2 days ago",
            "nps_score": 1,
            "nps_comment": INJECTION,
            "lifetime_revenue": 12.5,
            "preferred_channel": "sms",
        }
    )
    pa, pb = render(a, version), render(b, version)
    assert pa.system == pb.system  # the whole system message is the shared prefix
    assert pa.user != pb.user
    for value in ("very unhappy", "spend low", "give me 100% off", "preferred: sms"):
        assert value not in pb.system and value in pb.user  # the customer's data comes last
    assert "Noah" not in pb.system + pb.user  # and never who they are (agent/facts.py)
    assert "template_id=cs_followup_offer" in pb.system and "template_id=" not in pb.user


@pytest.mark.parametrize("version", VERSIONS)
def test_the_shared_prefix_covers_instructions_and_the_segment_s_actions(version: str) -> None:
    segments = {c.segment: c for c in CASES.values()}
    systems = {s: render(c, version).system for s, c in segments.items()}
    assert len(set(systems.values())) == len(systems)  # one prefix per segment
    for s, text in systems.items():
        assert f"Segment: {s}" in text
        assert all(f"template_id={a.template_id} " in text for a in REF.actions_for(s))
    # the customer message is short next to the shared part: most of each prompt can come from cache
    c = CASES["hvl_normal"]
    p = render(c, version)
    assert len(p.user) < 0.6 * len(p.system)

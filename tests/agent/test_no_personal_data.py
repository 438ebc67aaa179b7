"""No personal data in any prompt: every prompt version, rendered for every segmented customer of the
demo warehouse, carries none of the customers' names, emails, phones, streets or cities (read from
the raw customers table, which the marts never pass on); the cassettes' recorded requests carry
none of their scenario customers' names; and customers in the same situation get the same prompt."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from agent_cases import CASES

from agent.context import load_contexts, reference_for
from agent.facts import facts, mask_comment
from agent.prompts import available_versions, render_prompt
from core.reference import load_reference
from testing.demo_warehouse import DemoWarehouse

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
CHANNELS = ("email", "sms", "push")


def _render_all(con: duckdb.DuckDBPyConnection, version: str) -> list[str]:
    ref = reference_for(con)
    out = []
    for ctx in load_contexts(con):
        actions = [a for a in ref.actions_for(ctx.segment)][:3]
        ranking = [
            {"template_id": a.template_id, "channel": a.channel, "discount_pct": 0, "value": "1"}
            for a in actions
        ]
        p = render_prompt(
            ctx,
            version=version,
            ref=ref,
            allowed_channels=CHANNELS,
            goal="90d_clv",
            discount_cap=5,
            ranking=ranking,
        )
        out.append(f"{p.system}\n{p.user}")
    return out


def _words(text: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"\w+", text)}


@pytest.mark.parametrize("version", available_versions())
def test_no_prompt_of_the_demo_carries_a_customer_s_personal_data(
    demo_warehouse: DemoWarehouse, version: str
) -> None:
    con = duckdb.connect(str(demo_warehouse.duckdb_path), read_only=True)
    try:
        prompts = _render_all(con, version)
        people = con.execute(
            "select first_name, last_name, email, phone, address, city from main.stg_raw__customers"
        ).fetchall()
    finally:
        con.close()
    assert len(prompts) > 300
    text = "\n".join(prompts)
    words = _words(text)
    folded = text.casefold()
    text_digits = re.sub(r"\D", " ", text)
    digit_runs = set(text_digits.split())
    leaks = []
    for first, last, email, phone, address, city in people:
        leaks += [v for v in (first, last) if v and _words(v) <= words]  # a name, as whole words
        leaks += [v for v in (email, phone, address, city) if v and v.casefold() in folded]
        digits = re.sub(r"\D", "", phone or "")
        if digits and (digits in digit_runs or digits[-7:] in digit_runs):
            leaks.append(phone)
    assert leaks == [], f"{len(leaks)} personal values in the {version} prompts, e.g. {leaks[:5]}"


def test_the_facts_carry_nothing_identifying_and_exact_figures_only_on_request() -> None:
    ref = load_reference()
    sentinel = CASES["churn_normal"].model_copy(
        update={
            "customer_id": "C4242424",
            "first_name": "Zyxwvuta",
            "country": "ZZ",
            "lifetime_revenue": 1234.56,
            "segment_reason": "NPS 3 (detractor) given 11 days ago",
        }
    )
    for version in available_versions():
        p = render_prompt(
            sentinel, version=version, ref=ref, allowed_channels=CHANNELS, goal="90d_clv", discount_cap=5
        )
        text = p.system + p.user
        for value in ("C4242424", "Zyxwvuta", "ZZ", "1234.56", "11 days"):
            assert value not in text, (version, value)
    bucketed = facts(sentinel)
    exact = facts(sentinel, detail="exact")
    assert "1234.56" not in str(bucketed) and "1234.56" in str(exact)
    assert "Zyxwvuta" not in str(exact) and "ZZ" not in str(exact.values())


def test_customers_in_the_same_situation_share_one_prompt_and_different_ones_do_not() -> None:
    ref = load_reference()
    a = CASES["hvl_normal"]
    twin = a.model_copy(
        update={
            "customer_id": "C7",
            "first_name": "Noah",
            "country": "FR",
            "lifetime_revenue": a.lifetime_revenue + 3,
        }
    )
    other = a.model_copy(update={"customer_id": "C8", "sessions_30d": 0, "sessions_7d": 0})

    def render(c):
        p = render_prompt(c, version="v1", ref=ref, allowed_channels=CHANNELS, goal="90d_clv", discount_cap=5)
        return p.messages()

    assert render(a) == render(twin)
    assert render(a) != render(other)


@pytest.mark.parametrize(
    ("comment", "kept", "gone"),
    [
        ("Call me on +44 20 7946 0958 or mail jane.doe@example.com", "Call me on", ["7946", "jane.doe"]),
        ("Order #A12345 never arrived, I live at 12 Baker Street", "never arrived", ["A12345", "Baker"]),
        ("Bestellung 4711-22 fehlt, Hauptstraße 5", "fehlt", ["4711", "Hauptstraße"]),
        ("Ask for Emma at the store, she was great", "she was great", ["Emma"]),
        ("Delivery took three weeks and nobody answered my emails.", "Delivery took three weeks", []),
    ],
)
def test_a_comment_is_masked_before_it_is_quoted(comment: str, kept: str, gone: list[str]) -> None:
    masked = mask_comment(comment, frozenset({"emma", "olivia"}))
    assert kept in masked
    for value in gone:
        assert value not in masked
    if not gone:
        assert masked == comment  # nothing personal: quoted as written


def test_no_cassette_request_carries_a_scenario_customer_s_name() -> None:
    names = {c.first_name for c in CASES.values()}
    for path in sorted(CASSETTES.glob("*.yaml")):
        requests = re.findall(r"^- request:\n(?:    .*\n)+", path.read_text(), flags=re.M)
        body = "\n".join(requests)
        assert body, path.name
        for name in names:
            assert not re.search(rf"\b{re.escape(name)}\b", body), (path.name, name)

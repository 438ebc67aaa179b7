"""Grounding: a draft carries nothing of the prompt's machinery to the customer. The action bank's
internal descriptions, the words a prompt describes a customer with (every phrase agent/facts.py can
produce), the prompt's labels and the customer's raw record values (country code, ids, time zone,
segment labels) are refused and the approved copy is sent; the approved copy itself, and drafts that
write to the customer in their own words, pass."""

from __future__ import annotations

import itertools

import pytest
from guardrail_factories import make_ctx, make_proposal
from test_guardrails_engine import check, rerendered, run

from agent.facts import facts
from core.templates import render_template
from guardrails.checks.message import context_values
from guardrails.message_checker import get_checker


def _refusals(ref, message: str, ctx=None) -> tuple[str, ...]:
    ctx = ctx or make_ctx()
    findings = get_checker(ref).check(
        "email", "A little something for you", message, 5.0, ctx.first_name, None, None, context_values(ctx)
    )
    return tuple(code for code, _ in findings)


def test_the_draft_that_reached_a_customer_is_refused(ref):
    ctx = make_ctx(segment="churn_rescue_nps", country="IN", first_name="Lucas")
    draft = make_proposal(
        template_id="cs_followup_offer",
        subject="Customer-Successful Follow-Up Email",
        message="Customer-successful follow up email with a targeted offer (plus CS task) to customer Lucas, IN.",
    )
    d, report = run(ref, draft, ctx)
    assert d.status == "send" and "message_rerendered" in d.reasons
    assert {"internal_wording", "context_value"} <= set(d.reasons), d.reasons
    assert check(report, "message_rerender").verdict == "fixed"
    assert "targeted offer" not in d.message and " IN" not in d.message


def _band_contexts():
    """A context for every band agent/facts.py distinguishes, in every segment."""
    for segment, (recency, gap), sessions, (views, carts), revenue in itertools.product(
        ("high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps"),
        ((None, None), (30, 20.0), (60, 20.0), (200, 20.0)),
        (0, 2, 9),
        ((0, 0), (5, 0), (5, 2)),
        (50.0, 500.0, 5000.0),
    ):
        yield make_ctx(
            segment=segment,
            recency_days=recency,
            usual_gap_days=gap,
            sessions_30d=sessions,
            product_views_30d=views,
            add_to_cart_30d=carts,
            lifetime_revenue=revenue,
        )


def test_every_phrase_a_prompt_describes_a_customer_with_is_refused_in_a_draft(ref):
    phrases = {f[k] for ctx in _band_contexts() for f in [facts(ctx)] for k in ("reason", "profile")}
    assert len(phrases) >= 15
    for phrase in sorted(phrases):
        assert _refusals(ref, f"Hi Olivia, as {phrase}, enjoy 5% off your next order."), phrase


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("country", "DE"),
        ("customer_id", "c-000001"),
        ("timezone", "Europe/Berlin"),
        ("segment", "high_value_lapse_risk"),
    ],
)
def test_each_raw_record_value_is_refused(ref, field, value):
    ctx = make_ctx(country="DE", timezone="Europe/Berlin")
    assert getattr(ctx, field) == value
    assert "context_value" in _refusals(ref, f"Hi Olivia, {value}: enjoy 5% off your next order.", ctx)


def test_the_prompt_s_identifiers_are_refused(ref):
    """A prompt lists its actions by template id and names the segment: a draft that repeats either
    (any template's, any segment's; a segment name in any spelling) is re-rendered."""
    drafts = [f"Hi Olivia, {a.template_id} for you: 5% off your next order." for a in ref.actions]
    for segment in sorted({a.segment for a in ref.actions}):
        words = segment.split("_")
        for spelled in (segment, " ".join(words), "-".join(words).title(), segment.upper()):
            drafts.append(f"Hi Olivia, as a {spelled} customer: 5% off your next order.")
    for message in drafts:
        assert "internal_wording" in _refusals(ref, message), message
        d, report = run(ref, make_proposal(message=message))
        rerendered(ref, d, report, "internal_wording")


def test_the_prompt_s_labels_are_refused(ref):
    for label in ("Reachable channels", "template_id", "discount_pct", "quoted data", "preferred channel"):
        assert "banned_term" in _refusals(ref, f"Hi Olivia, {label}: 5% off your next order."), label


def test_the_approved_copy_and_a_draft_in_its_own_words_pass(ref):
    ctx = make_ctx(country="DE")
    for template in ref.templates.values():
        subject, body = render_template(template, ctx.first_name, 5.0)
        channel = next(a.channel for a in ref.actions if a.template_id == template.template_id)
        findings = get_checker(ref).check(
            channel, subject, body, 5.0, ctx.first_name, None, (subject, body), context_values(ctx)
        )
        assert not [f for f in findings if f[0] in ("internal_wording", "context_value", "banned_term")], (
            template.template_id,
            findings,
        )
    # words a message may well use: "in", "de" in lower case, "loyal", "follow up"
    d, _ = run(
        ref, make_proposal(message="Hi Olivia, we would love to follow up in person: 5% off, de rien.")
    )
    assert "message_rerendered" not in d.reasons, d.reasons


def test_a_draft_of_its_own_passes_and_one_copying_a_description_is_rerendered(ref):
    d, _ = run(ref, make_proposal(message="Hi Olivia, we miss you. Here is 5% off your next order."))
    assert "message_rerendered" not in d.reasons
    description = next(a.description for a in ref.actions if a.template_id == "winback_soft")
    d, report = run(ref, make_proposal(message=f"Hi Olivia, {description}. 5% off."))
    rerendered(ref, d, report, "internal_wording")


def _exact_ctx():
    """A customer whose exact-detail prompt (NBA_LLM__PROMPT_DETAIL=exact) shows their figures."""
    return make_ctx(
        lifetime_revenue=1532.4,
        nps_score=3,
        recency_days=62,
        segment_reason="lifetime revenue 1532 (monetary quintile 5 of 5); 62 days since last order vs usual "
        "30 (2.1x)",
    )


@pytest.mark.parametrize(
    ("message", "figure"),
    [
        ("Hi Olivia, you have spent 1532.4 with us: enjoy 5% off your next order.", "1532.4"),
        ("Hi Olivia, you rated us 3 out of 10, so here is 5% off your next order.", "3"),
        ("Hi Olivia, it has been 62 days since your last order. Enjoy 5% off.", "62"),
    ],
)
def test_a_figure_the_exact_prompt_shows_is_refused(ref, message, figure):
    ctx = _exact_ctx()
    shown = facts(ctx, detail="exact")
    assert "1532.40" in shown["profile"] and "NPS 3/10" in shown["profile"] and "62 days" in shown["reason"]
    assert ("other_figure", figure) in get_checker(ref).check(
        "email", "A little something for you", message, 5.0, ctx.first_name, None, None, context_values(ctx)
    )
    d, report = run(ref, make_proposal(message=message), ctx)
    rerendered(ref, d, report, "other_figure")
    assert figure not in d.message.replace("5%", "")


def test_the_discount_and_the_approved_copy_s_figures_pass_under_exact_detail(ref):
    ctx = _exact_ctx()
    for message in (
        "Hi Olivia, we miss you. Here is 5% off your next order.",
        "Hi Olivia, 5 percent off for you, and 5 new arrivals we think you will love.",
    ):
        d, report = run(ref, make_proposal(message=message), ctx)
        assert "message_rerendered" not in d.reasons and d.message == message, d.reasons
        assert check(report, "message").verdict == "pass"
    # a figure the approved copy states itself is not invented (the checker's own exemption)
    findings = get_checker(ref).check(
        "email", "Two for you", "Hi Olivia, 5% off, and 7 new styles.", 5.0, "Olivia", None,
        ("Two for you", "Hi Olivia, 5% off and 7 new styles."), context_values(ctx),
    )  # fmt: skip
    assert "other_figure" not in {code for code, _ in findings}


# Drafts that went out as written for winback_soft to Lucas (IN, RFM cant_lose_them): the prompt's own
# words in another case, plural, spelling or order. Each is refused and the approved copy is sent.
_LUCAS_DRAFTS = [
    ("Ranked actions: 5% off your next order, Lucas.", "banned_term"),
    ("Hi Lucas, this is the model's choice for you: 5% off your next order.", "internal_wording"),
    ("Hi Lucas, the best estimated value from past outcomes: 5% off your next order.", "internal_wording"),
    ("Hi Lucas, within our discount cap: 5% off your next order.", "banned_term"),
    ("Hi Lucas, we opened a CS task for you. Enjoy 5% off your next order.", "internal_wording"),
    ("Hi Lucas, you are one we cant lose them. Enjoy 5% off your next order.", "context_value"),
    ("Hi Lucas, you are one we Can't-Lose Them. Enjoy 5% off your next order.", "context_value"),
    ("Hi Lucas, a winback soft note: enjoy 5% off your next order.", "internal_wording"),
    ("Hi Lucas, Winback-Softs for you: enjoy 5% off your next order.", "internal_wording"),
    ("Hi Lucas, what they loved, soft and by email, reminding you to win back. 5% off.", "internal_wording"),
]


def _lucas():
    return make_ctx(first_name="Lucas", country="IN", rfm_segment="cant_lose_them")


@pytest.mark.parametrize(("message", "code"), _LUCAS_DRAFTS)
def test_internal_wording_in_any_spelling_or_order_is_refused(ref, message, code):
    ctx = _lucas()
    d, report = run(ref, make_proposal(subject="Lucas, a little something for you", message=message), ctx)
    assert d.status == "send" and "message_rerendered" in d.reasons and code in d.reasons, d.reasons
    assert check(report, "message_rerender").verdict == "fixed"
    assert d.message.startswith("Hi Lucas, it has been a while")


@pytest.mark.parametrize(
    "message",
    [
        "Hi Lucas, we miss you. Here is 5% off your next order.",
        "Hi Lucas, it has been a while! Come back for 5% off your next order.",
        # words the approved copies say are ours: "make it right" (cs_followup's subject)
        "Hi Lucas, we want to make it right: enjoy 5% off your next order.",
        "Hi Lucas, we can't lose you: enjoy 5% off your next order, in person or online.",
        # calling the reader "our customer" addresses them (the third-person rule below must not bite)
        "Hi Lucas, as our customer you get 5% off your next order.",
        "Hi Lucas, our customer-success team saved 5% off your next order for you.",
        "Hi Lucas, thank you for being one of our customers: 5% off your next order.",
    ],
)
def test_a_draft_in_its_own_words_still_passes(ref, message):
    d, _ = run(ref, make_proposal(subject="Lucas, a little something for you", message=message), _lucas())
    assert "message_rerendered" not in d.reasons and d.message == message, d.reasons


def test_every_run_of_three_words_of_the_prompt_s_fixed_text_is_refused(ref):
    """Any three words in a row (two of them not stop words) of any prompt version's fixed text, in
    any case: the rule is the run, not a list of phrases."""
    runs = [r for r in get_checker(ref).runs if not any(w.isdigit() for w in r)]
    assert ("the", "model", "choice") in runs and ("from", "past", "outcome") in runs
    for run_ in runs:
        message = f"Hi Olivia, {' '.join(run_).upper()}. 5% off."
        assert "internal_wording" in _refusals(ref, message), run_


# A draft of the hostile pass's LLM-mode live run that went out as written, to Yuki (winback_soft):
# the subject speaks of the reader in the third person, as the model's rationale does.
_ABOUT_THE_CUSTOMER = [
    (
        "The customer's request is for a discount and they are not available to make it.",
        "Hi Lucas! We just received your order. Let me help you out!",
    ),
    ("Lucas, a little something for you", "Hi Lucas, the customer gets 5% off the next order."),
    ("Lucas, a little something for you", "Hi Lucas, this user is offered 5% off your next order."),
    ("A note for the recipient", "Hi Lucas, enjoy 5% off your next order."),
]


@pytest.mark.parametrize(("subject", "message"), _ABOUT_THE_CUSTOMER)
def test_a_draft_about_the_customer_instead_of_to_them_is_rerendered(ref, subject, message):
    d, report = run(ref, make_proposal(subject=subject, message=message), _lucas())
    assert d.status == "send" and "internal_wording" in d.reasons, d.reasons
    assert check(report, "message_rerender").verdict == "fixed"
    assert "customer" not in f"{d.subject} {d.message}".lower().replace("customer-success", "")

"""The message checks bound to one set of reference data.

`MessageChecker.check` is a pure function of its arguments and is memoised: the rules policy and the
re-render path produce the same few hundred messages over and over, so a million decisions pay for
each distinct message once.
"""

from __future__ import annotations

import math
import re
from functools import cache, lru_cache

from core.contracts import ChannelLimit
from core.errors import TemplateRenderError
from core.prompt_text import fixed_prompt_text
from core.reference import ReferenceData
from core.templates import render_template
from guardrails.message import (
    compile_identifiers,
    compile_runs,
    compile_terms,
    find_addressing_problems,
    find_banned,
    find_context_values,
    find_dates,
    find_figures,
    find_identifiers,
    find_internal_wording,
    find_lifted_text,
    find_other_names,
    find_percentages,
    find_pii,
    find_prices,
    find_third_person,
    has_control,
    name_keys,
    sms_segments,
)

Finding = tuple[str, str]  # (reason code, evidence)
# a template placeholder left in the copy (a draft's `{first_name}` is filled before the checks read it)
_PLACEHOLDER_RE = re.compile(r"\{\{?\s*\w+\s*\}\}?")


class MessageChecker:
    def __init__(self, ref: ReferenceData) -> None:
        self.limits = ref.channel_limits
        self.banned = compile_terms(t.term for t in ref.banned_terms)
        self.names = name_keys(ref.customer_names)
        self.descriptions = tuple(sorted({a.description for a in ref.actions if a.description}))
        # what a prompt lists its actions and segments by, in any spelling
        self.identifiers = compile_identifiers(
            {a.template_id for a in ref.actions} | set(ref.templates), {a.segment for a in ref.actions}
        )
        # the word runs a prompt shows every customer (its fixed text, the actions' descriptions)
        # that no approved copy says
        self.runs = compile_runs((*fixed_prompt_text(), *self.descriptions), _approved_copies(ref))
        self.check = lru_cache(maxsize=65536)(self._check)

    def _check(
        self,
        channel: str,
        subject: str | None,
        body: str,
        discount_pct: float,
        first_name: str,
        customer_text: str | None = None,
        approved: tuple[str | None, str] | None = None,
        context: tuple[str, ...] = (),
    ) -> tuple[Finding, ...]:
        """Every way (subject, body) breaks a message rule for this channel and final discount;
        an empty tuple means the message may be sent. `customer_text` is the customer's own free text
        (their NPS comment): no draft may repeat it. `approved` is the approved template rendered for
        this customer (subject, body): what it says is exempt from that check, and when its body
        names the customer, the draft's body must too. `context` holds the customer's raw record
        values a draft must not carry (country code, ids, labels)."""
        limit = self.limits.get(channel)
        if limit is None:
            return (("unknown_channel", channel),)
        subject = subject or None
        text = body if subject is None else f"{subject} | {body}"
        approved_subject, approved_body = approved or (None, "")
        approved_text = f"{approved_subject or ''} | {approved_body}"
        return (
            *_shape_findings(channel, limit, subject, body),
            *self._content_findings(text, discount_pct, first_name),
            *_figure_findings(text, discount_pct, approved_text),
            *self._grounding_findings(text, customer_text, approved_text, context),
            *_addressing_findings(
                subject,
                body,
                first_name,
                needs_name=approved is not None and _names(approved_body, first_name),
            ),
        )

    def _content_findings(self, text: str, discount_pct: float, first_name: str) -> list[Finding]:
        """What the copy says: no placeholder left, no percentage but the discount, no price, banned
        term, other customer's name or date, no personal data."""
        out: list[Finding] = []
        unfilled = _PLACEHOLDER_RE.search(text)
        if unfilled:
            out.append(("placeholder", unfilled.group(0)))
        wrong = [p for p in find_percentages(text) if not math.isclose(p, discount_pct, abs_tol=1e-9)]
        if wrong:
            out.append(("percent_mismatch", f"{wrong[0]:g}% vs {discount_pct:g}%"))
        for code, found in (
            ("invented_price", find_prices(text)),
            ("banned_term", find_banned(text, self.banned)),
            ("other_customer_name", find_other_names(text, first_name, self.names)),
            ("invented_date", find_dates(text)),
        ):
            if found:
                out.append((code, found[0]))
        out.extend((f"pii_{kind}", found) for kind, found in find_pii(text)[:1])
        return out

    def _grounding_findings(
        self, text: str, customer_text: str | None, approved: str, context: tuple[str, ...]
    ) -> list[Finding]:
        """Nothing of the customer's own text, the prompt's machinery (its fixed text, the actions'
        descriptions, the template ids and segment names it lists them by) or the customer's record
        reaches the customer (what the approved copy says is exempt from the fixed text's and the
        descriptions' check)."""
        out: list[Finding] = []
        lifted = find_lifted_text(text, customer_text, approved=approved)
        if lifted:
            out.append(("copies_customer_text", lifted[0]))
        internal = find_internal_wording(text, self.descriptions, approved=approved, runs=self.runs)
        internal += find_identifiers(text, self.identifiers)
        internal += find_third_person(text, approved)
        if internal:
            out.append(("internal_wording", internal[0]))
        raw = find_context_values(text, context)
        if raw:
            out.append(("context_value", raw[0]))
        return out


def _figure_findings(text: str, discount_pct: float, approved: str) -> list[Finding]:
    """A number written in digits (outside a percentage, price or date, which have their own checks)
    must be the discount's figure or one the approved copy itself states: nothing else a prompt
    showed (exact detail: revenue, NPS score, days, counts; any detail: the ranking's model values)
    and nothing invented reaches the customer."""
    allowed = [discount_pct, *find_figures(approved)]
    other = [f for f in find_figures(text) if not any(math.isclose(f, a, abs_tol=1e-9) for a in allowed)]
    return [("other_figure", f"{other[0]:g}")] if other else []


def _shape_findings(channel: str, limit: ChannelLimit, subject: str | None, body: str) -> list[Finding]:
    """The message's form on its channel: no control characters, a body within the length (and SMS
    segments), a subject exactly where the channel has one, within its length."""
    out: list[Finding] = []
    if has_control(body) or (subject is not None and has_control(subject)):
        out.append(("control_chars", ""))
    if not body.strip():
        out.append(("empty_message", ""))
    if len(body) > limit.max_chars:
        out.append(("message_too_long", f"{len(body)}>{limit.max_chars}"))
    if channel == "sms":
        encoding, segments = sms_segments(body)
        if segments > limit.max_sms_segments:
            out.append(("sms_too_many_segments", f"{segments} {encoding}>{limit.max_sms_segments}"))
    if limit.max_subject_chars <= 0:
        if subject is not None:
            out.append(("subject_not_allowed", channel))
    elif subject is None or not subject.strip():
        out.append(("subject_missing", channel))
    elif len(subject) > limit.max_subject_chars:
        out.append(("subject_too_long", f"{len(subject)}>{limit.max_subject_chars}"))
    return out


def _addressing_findings(
    subject: str | None, body: str, first_name: str, *, needs_name: bool
) -> list[Finding]:
    """The first addressing problem of body or subject; the body must name the customer where the
    approved body does (`needs_name`)."""
    problems = find_addressing_problems(body, first_name, needs_name=needs_name)
    problems += [
        p for p in find_addressing_problems(subject or "", first_name, needs_name=False) if p not in problems
    ]
    return [("addressing", problem) for problem in problems[:1]]


def _names(text: str, first_name: str) -> bool:
    """Whether `text` (an approved template's copy) names the customer."""
    return "first_name_missing" not in find_addressing_problems(text, first_name, needs_name=True)


def _approved_copies(ref: ReferenceData) -> list[str]:
    """Every template's approved copy, with and without its discount sentence (a template that does
    not render is named by the reference validation, not here)."""
    out = []
    for template in ref.templates.values():
        for discount in (0.0, 1.0):
            try:
                subject, body = render_template(template, "", discount)
            except TemplateRenderError:
                continue
            out.append(f"{subject or ''} | {body}")
    return out


@cache
def get_checker(ref: ReferenceData) -> MessageChecker:
    """One checker per ReferenceData object (reference data hashes by identity)."""
    return MessageChecker(ref)

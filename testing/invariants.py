"""An independent checker of every invariant a final decision must satisfy.

It recomputes what it needs from the raw inputs (context, contact history, settings, reference data)
with its own code, rather than trusting the engine's intermediate results, so property tests, the
live-LLM test and evals can use it as the oracle. Returns [] when the decision is safe.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.contracts import ChannelLimit, ContactEvent, CustomerContext, Decision, GuardrailSettings
from core.policy_kinds import fell_back
from core.reference import ReferenceData
from guardrails.holdout import assign_arm
from guardrails.message import (
    find_banned,
    find_dates,
    find_figures,
    find_other_names,
    find_percentages,
    find_pii,
    find_prices,
    name_keys,
    sms_segments,
    strip_control,
)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _quiet(at: datetime, tz_name: str, start: int, end: int) -> bool:
    try:
        tz = ZoneInfo(tz_name)
    except Exception:
        tz = ZoneInfo("UTC")
    h = at.astimezone(tz).hour
    if start == end:
        return False
    return start <= h < end if start < end else (h >= start or h < end)


def message_violations(
    subject: str | None,
    body: str | None,
    *,
    channel: str,
    discount_pct: float,
    first_name: str,
    ref: ReferenceData,
) -> list[str]:
    """Every message rule, recomputed from the pure detectors."""
    out: list[str] = []
    limit = ref.channel_limits.get(channel)
    if limit is None:
        return ["unknown_channel"]
    if body is None or not body.strip():
        return ["empty_message"]
    if strip_control(body) != body or (subject is not None and strip_control(subject) != subject):
        out.append("control_chars")
    if len(body) > limit.max_chars:
        out.append("message_too_long")
    if channel == "sms" and sms_segments(body)[1] > limit.max_sms_segments:
        out.append("sms_too_many_segments")
    if limit.max_subject_chars == 0 and subject:
        out.append("subject_not_allowed")
    if limit.max_subject_chars > 0 and (not subject or len(subject) > limit.max_subject_chars):
        out.append("subject_missing_or_too_long")
    for text in (subject or "", body):
        if any(p != discount_pct for p in find_percentages(text)):
            out.append("percent_mismatch")
        if find_prices(text):
            out.append("invented_price")
        if any(f != discount_pct for f in find_figures(text)):  # the approved copy states no other figure
            out.append("other_figure")
        if find_banned(text, [t.term for t in ref.banned_terms]):
            out.append("banned_term")
        if find_pii(text):
            out.append("pii")
        if find_other_names(text, first_name, name_keys(ref.customer_names)):
            out.append("other_customer_name")
        if find_dates(text):
            out.append("invented_date")
    return sorted(set(out))


_WORD = re.compile(r"\w+")
COPY_WORDS = 5  # this many consecutive words of the customer's own text is a copy


def _word_list(text: str | None) -> list[str]:
    return [w.casefold() for w in _WORD.findall(unicodedata.normalize("NFKC", text or ""))]


def free_text_violations(decision: Decision, ctx: CustomerContext, ref: ReferenceData) -> list[str]:
    """The customer's own free text never reaches them: no run of COPY_WORDS words of their comment
    that the approved template does not say itself; and a message names its own recipient when the
    approved template does (its first name appears)."""
    out: list[str] = []
    template = ref.templates.get(decision.template_id or "")
    approved = ""
    if template is not None:
        from core.templates import render_template

        subj, body = render_template(template, ctx.first_name, decision.discount_pct)
        approved = f"{subj or ''} {body}"
    sent = _word_list(f"{decision.subject or ''} {decision.message or ''}")
    mine = _word_list(approved)
    comment = _word_list(ctx.nps_comment)

    def runs(words: list[str]) -> set[tuple[str, ...]]:
        return {tuple(words[i : i + COPY_WORDS]) for i in range(len(words) - COPY_WORDS + 1)}

    if runs(sent) & runs(comment) - runs(mine):
        out.append("copies_customer_text")
    if re.search(r"\{\{?\s*\w+\s*\}\}?", f"{decision.subject or ''} {decision.message or ''}"):
        out.append("unfilled_placeholder")
    own = set(_word_list(ctx.first_name))
    if own and own & set(mine) and not own & set(sent):
        out.append("first_name_missing")
    return out


def violations(
    decision: Decision,
    ctx: CustomerContext,
    history: Sequence[ContactEvent],
    *,
    as_of: datetime,
    settings: GuardrailSettings,
    ref: ReferenceData,
) -> list[str]:
    as_of = _utc(as_of)
    arm = assign_arm(ctx.customer_id, ctx.segment, settings)
    out = _record_violations(decision, ctx, arm)
    if decision.status not in ("send", "deferred"):
        out += _inert_violations(decision)
        return out

    if arm != "treatment" or decision.arm != "treatment":
        out.append("holdout_contacted")
    if ctx.globally_suppressed:
        out.append("globally_suppressed")
    ch = decision.channel
    if ch is None or not ctx.consent.allows(ch):
        out.append("no_consent")
        return out
    out += _action_violations(decision, ctx, settings, ref)
    limit = ref.channel_limits.get(ch)
    out += _contact_violations(ch, ctx, history, as_of, settings, limit)
    out += message_violations(
        decision.subject,
        decision.message,
        channel=ch,
        discount_pct=decision.discount_pct,
        first_name=ctx.first_name,
        ref=ref,
    )
    out += free_text_violations(decision, ctx, ref)
    out += _timing_violations(decision, ctx, as_of, settings, limit)
    return out


def _record_violations(decision: Decision, ctx: CustomerContext, arm: str) -> list[str]:
    """What any decision must get right whatever its status: the customer's arm, the customer and
    context it was made for, a reason for a fallback, and holdout status only in the holdout."""
    out: list[str] = []
    if decision.arm != arm:
        out.append("arm_mismatch")
    if decision.customer_id != ctx.customer_id or decision.segment != ctx.segment:
        out.append("wrong_customer")
    if decision.context_hash != ctx.context_hash():
        out.append("context_hash_mismatch")
    if fell_back(decision.policy) and not decision.fallback_reason:
        out.append("fallback_without_reason")
    if decision.status == "holdout" and decision.arm != "holdout":
        out.append("holdout_status_in_treatment")
    return out


def _inert_violations(decision: Decision) -> list[str]:
    """A decision that sends nothing carries no action and no deferral."""
    out: list[str] = []
    if decision.channel is not None or decision.message is not None or decision.template_id is not None:
        out.append("inert_decision_carries_action")
    if decision.defer_until is not None:
        out.append("defer_until_without_deferral")
    return out


def _action_violations(
    decision: Decision, ctx: CustomerContext, settings: GuardrailSettings, ref: ReferenceData
) -> list[str]:
    """The action is in the segment's action bank on its channel, the discount within the cap and
    within the action's range."""
    out: list[str] = []
    ch = decision.channel
    action = next(
        (a for a in ref.actions if a.segment == ctx.segment and a.template_id == decision.template_id), None
    )
    if action is None or action.channel != ch or decision.template_id not in ref.templates:
        out.append("not_in_action_bank")
    d = decision.discount_pct
    if not math.isfinite(d) or d < 0 or d > settings.discount_cap:
        out.append("discount_out_of_range")
    elif action is not None and not (action.min_discount_pct <= d <= action.max_discount_pct):
        out.append("discount_out_of_bank_range")
    return out


def _contact_violations(
    ch: str,
    ctx: CustomerContext,
    history: Sequence[ContactEvent],
    as_of: datetime,
    settings: GuardrailSettings,
    limit: ChannelLimit | None,
) -> list[str]:
    """Contact pressure, from the history and the context's last contacts: no contact within the
    suppression window, and the channel's weekly cap not reached."""
    out: list[str] = []
    times: set[tuple[str, datetime]] = {
        (e.channel, _utc(e.contacted_at)) for e in history if e.customer_id == ctx.customer_id
    }
    times |= {(c, _utc(t)) for c, t in ctx.last_contact.model_dump().items() if t is not None}
    if any(abs(as_of - t) < timedelta(hours=settings.suppress_hours) for _, t in times):
        out.append("suppression_window")
    if limit is None or sum(1 for c, t in times if c == ch and abs(as_of - t) < timedelta(days=7)) >= (
        limit.max_per_7d
    ):
        out.append("frequency_cap")
    return out


def _timing_violations(
    decision: Decision,
    ctx: CustomerContext,
    as_of: datetime,
    settings: GuardrailSettings,
    limit: ChannelLimit | None,
) -> list[str]:
    """Quiet hours (when enforced): no send inside them, a deferral only from inside them to the next
    allowed time within a day; and a send carries no deferral."""
    out: list[str] = []
    if limit is not None and settings.enforce_quiet_hours:
        s, e = limit.quiet_start_hour, limit.quiet_end_hour
        quiet_now = _quiet(as_of, ctx.timezone, s, e)
        if decision.status == "send" and quiet_now:
            out.append("sent_in_quiet_hours")
        if decision.status == "deferred":
            until = decision.defer_until
            if not quiet_now:
                out.append("deferred_outside_quiet_hours")
            if until is None or _utc(until) <= as_of or _utc(until) - as_of > timedelta(hours=24):
                out.append("defer_until_invalid")
            elif _quiet(until, ctx.timezone, s, e) or not _quiet(
                until - timedelta(minutes=1), ctx.timezone, s, e
            ):
                out.append("defer_until_not_next_allowed_time")
    if decision.status == "send" and decision.defer_until is not None:
        out.append("defer_until_on_send")
    return out

"""What an LLM prompt may say about a customer: the decision-relevant facts, bucketed, and nothing
that identifies the person.

A prompt template sees only `facts(ctx)`: no name, country, email, phone, address or customer id, and
no exact figure (revenue, counts, days) but its band. Customers in the same situation get the same
words, so their prompts are identical and share one answer (the decision cache keys on the prompt):
the cost of LLM mode grows with the distinct situations, not the head count. The model addresses the
customer as `{first_name}`; the guardrails fill it from the warehouse before they check the message.

The NPS comment is quoted (its tone matters to the message) after masking what could identify
someone: email addresses, phone and order numbers, street addresses and known first names.

`detail="exact"` keeps the figures exact (still nothing identifying): each prompt is then unique to
its customer. It exists to measure what the bands cost (bench/bench_llm_shared_drafts.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from typing import Literal

from core.contracts import CustomerContext

Detail = Literal["bucketed", "exact"]
PLACEHOLDERS = frozenset({"first_name"})  # what a draft may leave for the product to fill in


def band(value: float | None, edges: tuple[float, ...], labels: tuple[str, ...]) -> str:
    """The label of the band `value` falls in: labels[i] for edges[i-1] <= value < edges[i]."""
    if value is None:
        return "unknown"
    for edge, label in zip(edges, labels, strict=False):
        if value < edge:
            return label
    return labels[-1]


def _revenue(v: float) -> str:
    return band(v, (200, 1000), ("low", "medium", "high"))


def _engagement(ctx: CustomerContext) -> str:
    return band(ctx.sessions_30d, (1, 4), ("inactive this month", "a few visits this month", "visits often"))


def _intent(ctx: CustomerContext) -> str:
    if ctx.add_to_cart_30d > 0:
        return "has added items to the cart"
    return "browsed products" if ctx.product_views_30d > 0 else "has not browsed products"


def _overdue(ctx: CustomerContext) -> str:
    if ctx.recency_days is None or not ctx.usual_gap_days:
        return "no usual order rhythm yet"
    ratio = ctx.recency_days / ctx.usual_gap_days
    return band(ratio, (2, 4), ("a little overdue", "well overdue", "long overdue")) + " for their next order"


def _nps(score: int | None) -> str:
    if score is None:
        return "none"
    return band(score, (4, 7, 9), ("very unhappy", "unhappy", "neutral", "happy"))


def _reason(ctx: CustomerContext) -> str:
    if ctx.segment == "high_value_lapse_risk":
        return f"a high-value customer, {_overdue(ctx)}"
    if ctx.segment == "new_users_first_week_intent":
        return f"signed up in the last week, no order yet, {_intent(ctx)}"
    return f"gave a low NPS score recently ({_nps(ctx.nps_score)})"


def _profile(ctx: CustomerContext) -> str:
    """What else matters to this segment's decision, beyond the reason it is in it."""
    if ctx.segment == "churn_rescue_nps":
        return f"spend {_revenue(ctx.lifetime_revenue)}, {_engagement(ctx)}"
    return _engagement(ctx)


def facts(
    ctx: CustomerContext, *, names: Collection[str] = (), detail: Detail = "bucketed"
) -> dict[str, str]:
    """The customer's facts as a prompt may show them (see the module docstring). Only the churn
    segment's prompt quotes the comment: it is why the customer is there."""
    quote = ctx.segment == "churn_rescue_nps" and ctx.nps_comment
    out = {
        "segment": ctx.segment,
        "reason": _reason(ctx),
        "profile": _profile(ctx),
        "comment": mask_comment(ctx.nps_comment, names) if quote and ctx.nps_comment else "",
        "preferred_channel": ctx.preferred_channel,
    }
    if detail == "exact":
        out["reason"] = ctx.segment_reason
        out["profile"] = (
            f"customer for {ctx.tenure_days} days, {ctx.orders_count} orders, lifetime revenue "
            f"{ctx.lifetime_revenue:.2f}, average order {ctx.avg_order_value:.2f}, RFM {ctx.rfm_segment}, "
            f"{ctx.sessions_7d} sessions in 7 days, {ctx.sessions_30d} in 30 days, "
            f"{ctx.product_views_30d} product views, {ctx.add_to_cart_30d} add-to-carts"
            + ("" if ctx.nps_score is None else f", latest NPS {ctx.nps_score}/10")
        )
    return out


# --- masking free text ------------------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.+\-]+ ?(?:@|\[at\]|\(at\)) ?[\w\-]+(?: ?(?:\.|\[dot\]|\(dot\)) ?[\w\-]+)+", re.I)
_ORDER = re.compile(
    r"(?:#|\b(?:order|bestellung|commande|pedido|ordine)\s*(?:no\.?|nr\.?|n°|#)?\s*)\w*\d[\w-]*", re.I
)
_STREET_WORDS = (
    r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|square|sq"
    r"|stra(?:ss|ß)e|str|weg|platz|gasse|allee|rue|avenida|calle|via|viale|piazza|laan|straat|gatan|vej"
)
_ADDRESS = re.compile(
    rf"\b\d{{1,5}}[a-z]?\s+(?:[A-ZÀ-Ý][\w'-]*\s+){{0,3}}(?:{_STREET_WORDS})\b\.?"
    rf"|\b(?:{_STREET_WORDS})\.?\s+(?:[A-ZÀ-Ý][\w'-]*\s+){{0,3}}\d{{1,5}}[a-z]?\b"
    rf"|\b[A-ZÀ-Ý][\w'-]*(?:stra(?:ss|ß)e|str\.|weg|platz|gasse|allee)\s+\d{{1,5}}[a-z]?\b",
    re.I,
)
_DIGITS = re.compile(
    r"\+?\(?\d[\d ().\-/]{4,}\d"
)  # 6+ characters of digits: phones, card and account numbers
_CAPITALISED = re.compile(r"\b[A-ZÀ-ÝĀ-Ž][\w'-]*")


def name_key(word: str) -> str:
    """How a word is compared with the known first names: NFKC, case-folded."""
    return unicodedata.normalize("NFKC", word).strip().casefold()


def name_keys(names: Collection[str]) -> frozenset[str]:
    return frozenset(k for k in map(name_key, names) if k)


def mask_comment(text: str, names: Collection[str] = ()) -> str:
    """The comment with personal data replaced by [email], [order number], [address], [number] and
    [name] (capitalised words that are a known first name: `names` holds their `name_key`s)."""
    out = _EMAIL.sub("[email]", text)
    out = _ORDER.sub("[order number]", out)
    out = _ADDRESS.sub("[address]", out)
    out = _DIGITS.sub(lambda m: "[number]" if sum(c.isdigit() for c in m.group(0)) >= 6 else m.group(0), out)
    if names:
        out = _CAPITALISED.sub(lambda m: "[name]" if name_key(m.group(0)) in names else m.group(0), out)
    return out

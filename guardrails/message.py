"""Message checks as pure functions, and the sandboxed renderer of approved templates.

Detection runs on a normalised copy of the text (control and format characters removed, NFKC,
dashes unified, whitespace collapsed), so full-width digits, zero-width joiners or non-breaking
spaces cannot smuggle a percentage, a price or a banned word past a check. Length and SMS segment
counts are measured on the text as it would be sent.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Literal

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from agent.contracts import MessageTemplate
from guardrails.errors import TemplateRenderError
from warehouse.names import FIRST_NAMES

# --- control characters -----------------------------------------------------------------------------

_STRIP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})  # controls, format (zero-width, bidi), surrogates
_ASCII_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


@lru_cache(maxsize=65536)
def strip_control(text: str) -> str:
    """Remove control, format (zero-width, bidi override), surrogate and private-use characters;
    newlines stay. CRLF/CR become LF."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii():
        return _ASCII_CONTROL_RE.sub("", text)
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) not in _STRIP_CATEGORIES)


def has_control(text: str) -> bool:
    return strip_control(text) != text


_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63"})
_WS_RE = re.compile(r"\s+")


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """The form every content check reads: no controls, NFKC, ASCII dashes, single spaces."""
    return _WS_RE.sub(" ", unicodedata.normalize("NFKC", strip_control(text)).translate(_DASHES)).strip()


# --- SMS segments ---------------------------------------------------------------------------------

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
Encoding = Literal["GSM-7", "UCS-2"]


def _pack(widths: Iterable[int], single: int, multi: int) -> int:
    widths = list(widths)
    total = sum(widths)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for w in widths:  # an escaped character or a surrogate pair is never split across segments
        if used + w > multi:
            segments, used = segments + 1, 0
        used += w
    return segments


def sms_segments(text: str) -> tuple[Encoding, int]:
    """(encoding, segments): GSM-7 when every character is in the GSM 03.38 basic or extension table
    (extension characters take two septets; 160 per single part, 153 per part when concatenated),
    else UCS-2 (UTF-16 code units; 70 single, 67 concatenated; surrogate pairs count two)."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        return "GSM-7", _pack((2 if c in GSM7_EXTENSION else 1 for c in text), 160, 153)
    return "UCS-2", _pack((2 if ord(c) > 0xFFFF else 1 for c in text), 70, 67)


# --- percentages --------------------------------------------------------------------------------

_NUM = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?)"
_PCT_WORD = r"(?:%|٪|percent\b|per ?cent\b|pct\b|prozent\b|procent\b|pour ?cent\b|por ?ciento\b|per ?cento\b)"
_PCT_RE = re.compile(rf"(?<![\d.,]){_NUM} ?-?{_PCT_WORD}", re.I)
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "twenty-five": 25,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "a hundred": 100,
    "one hundred": 100,
    "hundred": 100,
}
_PCT_WORDS_RE = re.compile(
    r"\b(" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + rf") ?-?{_PCT_WORD}", re.I
)
_HALF_RE = re.compile(r"\bhalf[ -]?(?:off|price|priced)\b", re.I)


def _parse_number(raw: str) -> float:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw):
        return float(raw.replace(",", ""))
    return float(raw.replace(",", "."))


def find_percentages(text: str) -> list[float]:
    """Every percentage the text states: "20%", "5.5 %", "20 percent", "twenty percent", "half off"."""
    norm = normalize(text)
    found = [_parse_number(m.group(1)) for m in _PCT_RE.finditer(norm)]
    found += [float(_NUMBER_WORDS[m.group(1).lower()]) for m in _PCT_WORDS_RE.finditer(norm)]
    found += [50.0 for _ in _HALF_RE.finditer(norm)]
    return found


# --- prices ---------------------------------------------------------------------------------------

_SC = "".join(re.escape(chr(c)) for c in range(0x10000) if unicodedata.category(chr(c)) == "Sc")
_CODES = "usd|eur|gbp|jpy|chf|cad|aud|nzd|inr|sek|nok|dkk|pln|czk|huf|brl|mxn|cny|rmb|krw|try|zar|sgd|hkd|rub"
_CUR_WORDS = (
    r"dollars?|euros?|pounds?|quid|bucks|cents?|pence|yen|yuan|rupees?|francs?|kronor|krona|kroner|"
    r"kr|zloty|złoty|zł|pesos?|reais|rand|lira"
)
_AMOUNT = r"\d(?:[.,' ]?\d)*"
_PRICE_RE = re.compile(
    rf"[{_SC}] ?{_AMOUNT}|{_AMOUNT} ?[{_SC}]|\b(?:{_CODES}) ?{_AMOUNT}|{_AMOUNT} ?(?:{_CODES}|{_CUR_WORDS})\b",
    re.I,
)


def find_prices(text: str) -> list[str]:
    """Every money amount: "$20", "20 EUR", "€15", "15,99 €", "20 dollars"."""
    return [m.group(0) for m in _PRICE_RE.finditer(normalize(text))]


# --- personal data ------------------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"[\w.+\-]+ ?(?:@|\[at\]|\(at\)) ?[\w\-]+(?: ?(?:\.|\[dot\]|\(dot\)) ?[\w\-]+)+", re.I)
_DIGITS_RE = re.compile(r"(?<!\w)\+?\(?\d(?:[\d ().\-]*\d)?")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_pii(text: str) -> list[tuple[str, str]]:
    """(kind, match) for email addresses, phone numbers (7-12 digits), card-like numbers (13-19
    digits, with or without separators; Luhn is not required) and longer digit runs."""
    norm = normalize(text)
    found = [("email", m.group(0)) for m in _EMAIL_RE.finditer(norm)]
    for m in _DIGITS_RE.finditer(norm):
        digits = re.sub(r"\D", "", m.group(0))
        n = len(digits)
        if 7 <= n <= 12:
            found.append(("phone", m.group(0)))
        elif 13 <= n <= 19:
            found.append(("card", m.group(0) + (" (luhn)" if luhn_ok(digits) else "")))
        elif n > 19:
            found.append(("number", m.group(0)))
    return found


# --- banned terms ---------------------------------------------------------------------------------


def compile_terms(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive, word-boundary-aware pattern; spaces and hyphens inside a term match
    any run of spaces/hyphens (or none), so "risk free", "risk-free" and "riskfree" all match."""
    parts = []
    for term in sorted({normalize(t).lower() for t in terms if t.strip()}, key=len, reverse=True):
        words = [re.escape(w) for w in re.split(r"[\s\-]+", term) if w]
        parts.append(r"[\s\-]*".join(words))
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.I)


def find_banned(text: str, terms: Sequence[str] | re.Pattern[str] | None) -> list[str]:
    pattern = terms if isinstance(terms, re.Pattern) or terms is None else compile_terms(terms)
    return [m.group(0) for m in pattern.finditer(normalize(text))] if pattern else []


# --- other customers' names -------------------------------------------------------------------------

_NAMES = tuple(unicodedata.normalize("NFKC", n) for n in FIRST_NAMES)
_NAMES_RE = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(n) for n in sorted(_NAMES, key=len, reverse=True)) + r")(?!\w)", re.I
)


def find_other_names(text: str, first_name: str) -> list[str]:
    """Names from FIRST_NAMES in the text other than the recipient's own (case-insensitive, whole
    words). Every word of the recipient's first name counts as their own."""
    own = {w.casefold() for w in re.findall(r"\w+", normalize(first_name))}
    return [m.group(0) for m in _NAMES_RE.finditer(normalize(text)) if m.group(0).casefold() not in own]


# --- dates and deadlines ------------------------------------------------------------------------------

_MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE_PATTERNS = [
    rf"\b(?:{_MONTHS})\.? {_DAY}\b",
    rf"\b{_DAY} (?:of )?(?:{_MONTHS})\b",
    r"\b(?:january|february|april|june|july|august|september|october|november|december)\b",
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b",
    r"\b(?:tomorrow|tonight|midnight|overnight|weekend|christmas|xmas|easter|halloween|thanksgiving|"
    r"black friday|new year'?s?|valentine'?s?)\b",
    r"\b(?:expires?|expiring|expiry|expiration|deadline|last chance|limited time|offer ends|"
    r"ends? (?:on|at|in|by|soon|today|tonight|tomorrow)|today only|only today|this week only|"
    r"valid (?:until|till|through|thru|to)|until|till|through \w+day)\b",
    r"\b(?:next|this|coming) (?:week|month|year)\b",
    r"\b(?:within|in|for|next) (?:the next )?\d+ ?(?:hours?|hrs?|days?|weeks?|months?)\b",
    r"\b\d+ ?(?:hours?|hrs?|days?|weeks?) (?:left|only|remaining)\b",
    r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b",
    r"\b\d{1,2}[-/.]\d{1,2}(?:[-/.]\d{2,4})?\b",
    r"\b(?:19|20)\d{2}\b",
    r"\b\d{1,2}(?::\d{2})? ?(?:am|pm|a\.m\.|p\.m\.)(?!\w)",
    r"\b\d{1,2}:\d{2}\b",
    r"\bby (?:the )?(?:end of|\d|(?:" + _MONTHS + r")\b)",
]
_DATE_RE = re.compile("|".join(f"(?:{p})" for p in _DATE_PATTERNS), re.I)


def find_dates(text: str) -> list[str]:
    """Explicit dates, weekdays, months, "tomorrow", "by May 3", times of day and deadlines: an
    approved template states none, so any of these in a draft is invented."""
    return [m.group(0) for m in _DATE_RE.finditer(normalize(text))]


# --- rendering approved templates -------------------------------------------------------------------

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=256)
def _compiled(source: str):  # type: ignore[no-untyped-def]
    return _ENV.from_string(source)


@lru_cache(maxsize=65536)
def _render(template_id: str, subject: str | None, body: str, first_name: str, discount: float):
    try:
        subj = _compiled(subject).render(first_name=first_name, discount_pct=discount) if subject else None
        return subj, _compiled(body).render(first_name=first_name, discount_pct=discount)
    except TemplateError as exc:
        raise TemplateRenderError(template_id, f"{type(exc).__name__}: {exc}") from None


def render_template(
    template: MessageTemplate, first_name: str, discount_pct: float
) -> tuple[str | None, str]:
    """Render an approved template (sandboxed, StrictUndefined) -> (subject, body)."""
    if not math.isfinite(discount_pct):
        raise TemplateRenderError(template.template_id, f"discount_pct is not finite: {discount_pct!r}")
    return _render(template.template_id, template.subject, template.body, first_name, float(discount_pct))

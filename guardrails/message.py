"""Message checks as pure functions, and the sandboxed renderer of approved templates.

Detection runs on a normalised copy of the text (control and format characters removed, NFKC,
dashes unified, whitespace collapsed), so full-width digits, zero-width joiners or non-breaking
spaces cannot smuggle a percentage, a price or a banned word past a check. Length and SMS segment
counts are measured on the text as it would be sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from typing import Literal

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


_KEY_SEP = r"[\W_]*"  # between the words of a label or term: any punctuation, underscore or none
_APOSTROPHES_RE = re.compile(r"['\u2019\u02bc`]")


def singular(word: str) -> str:
    """The simple singular every internal-wording check compares words by ("actions" -> "action");
    short words and "-ss" stay as written."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _phrase_pattern(phrase: str) -> str:
    """A term, label or id as a pattern that matches it in any case, with any punctuation, underscore,
    hyphen or space (or none) between its words and each word in the singular or plural."""
    words = [w for w in re.split(r"[\W_]+", _APOSTROPHES_RE.sub("", normalize(phrase).lower())) if w]
    return (
        _KEY_SEP.join(re.escape(singular(w)) + ("(?:e?s)?" if w.isalpha() else "") for w in words)
        if words
        else ""
    )


def compile_terms(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive, word-boundary-aware pattern for the banned terms, each matched as
    `_phrase_pattern` writes it: "risk free", "risk-free", "riskfree" and "Risk_Frees" all match, and
    "ranked action" matches "Ranked actions"."""
    parts = sorted({p for p in (_phrase_pattern(t) for t in terms if t.strip()) if p}, key=len, reverse=True)
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.I)


def _label_text(text: str) -> str:
    """The text a label or term is looked for in: normalised, apostrophes dropped ("can't" -> "cant")."""
    return _APOSTROPHES_RE.sub("", normalize(text))


def find_banned(text: str, terms: Sequence[str] | re.Pattern[str] | None) -> list[str]:
    pattern = terms if isinstance(terms, re.Pattern) or terms is None else compile_terms(terms)
    return [m.group(0) for m in pattern.finditer(_label_text(text))] if pattern else []


# --- other customers' names -------------------------------------------------------------------------

_WORD_RE = re.compile(r"\w+")


def name_key(name: str) -> str:
    """How a name is compared: normalised (NFKC, single spaces) and case-folded."""
    return normalize(name).casefold()


def name_keys(names: Iterable[str]) -> frozenset[str]:
    return frozenset(k for k in (name_key(n) for n in names) if k)


def find_other_names(text: str, first_name: str, names: Collection[str]) -> list[str]:
    """Known customer first names (`names`, as `name_keys` gives them) in the text other than the
    recipient's own: whole words, case-insensitive, the longest name first at each word (so
    "Mary Jane" is one name when it is known). Every word of the recipient's first name counts as
    their own. A set lookup per word, so the check costs the same for ten names or a million."""
    if not names:
        return []
    norm = normalize(text)
    words = list(_WORD_RE.finditer(norm))
    span = max((len(_WORD_RE.findall(n)) for n in names), default=1)
    own = {w.casefold() for w in _WORD_RE.findall(normalize(first_name))}
    found: list[str] = []
    i = 0
    while i < len(words):
        for k in range(min(span, len(words) - i), 0, -1):
            candidate = norm[words[i].start() : words[i + k - 1].end()]
            if candidate.casefold() in names:
                if candidate.casefold() not in own:
                    found.append(candidate)
                i += k
                break
        else:
            i += 1
    return found


# --- text lifted from the customer's own words, and who the message addresses -------------------

_STOPWORD_TEXT = (
    "a an the and or but if then so to of in on at by for with from as is are was were be been being i "
    "me my mine we us our you your yours he him his she her it its they them their this that these those "
    "do does did have has had not no yes will would can could shall should may might must just very "
    "all any some more most much many than too also there here what when where who whom which why how"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split(" "))
_LIFT_MAX = 12  # longest word sequence looked for


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD_RE.findall(normalize(text))]


def _ngrams(words: Sequence[str], n_min: int, n_max: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for n in range(n_min, n_max + 1) for i in range(0, len(words) - n + 1)}


def find_lifted_text(
    text: str, source: str | None, *, approved: str = "", min_words: int = 3, min_content: int = 2
) -> list[str]:
    """Word sequences of `text` that also occur in `source` (a customer's own free text): at least
    `min_words` words with at least `min_content` of them not stop words, longest first, leaving out
    sequences the `approved` copy itself contains. A marketing message has no reason to repeat what
    the customer wrote: a draft that does is carrying the customer's text (an injected instruction, a
    claim, a question about someone else) to the customer."""
    if not source:
        return []
    src = _words(source)
    if len(src) < min_words:
        return []
    have = _ngrams(src, min_words, _LIFT_MAX)
    exempt = _ngrams(_words(approved), min_words, _LIFT_MAX) if approved else set()
    words = _words(text)
    found: list[tuple[int, str]] = []
    i = 0
    while i < len(words):
        for n in range(min(_LIFT_MAX, len(words) - i), min_words - 1, -1):
            gram = tuple(words[i : i + n])
            if gram in have and gram not in exempt and sum(w not in _STOPWORDS for w in gram) >= min_content:
                found.append((n, " ".join(gram)))
                i += n
                break
        else:
            i += 1
    return [g for _, g in sorted(found, key=lambda f: -f[0])]


_PROMPT_RUN = 3  # words in a row of the prompt's fixed text or a description a draft may not repeat
_PROMPT_RUN_CONTENT = 2  # of them not stop words
# more than this share of a description's content words (and at least `_DESCRIPTION_WORDS` of them)
# is the description reordered; an approved copy, written by us, may share up to half of its own
_DESCRIPTION_SHARE = 0.5
_DESCRIPTION_WORDS = 3


def keys(text: str) -> list[str]:
    """The words internal wording is compared by: normalised, case-folded, apostrophes dropped, split
    at any punctuation, underscore, hyphen or space, each in the simple singular."""
    return [singular(w) for w in re.split(r"[\W_]+", _label_text(text).casefold()) if w]


def _runs(words: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + _PROMPT_RUN]) for i in range(len(words) - _PROMPT_RUN + 1)}


def compile_runs(sources: Iterable[str], ours: Iterable[str] = ()) -> frozenset[tuple[str, ...]]:
    """The runs of `_PROMPT_RUN` words (at least `_PROMPT_RUN_CONTENT` of them not stop words) of
    `sources` (the prompt's fixed text, the action bank's descriptions) that no text of `ours` (the
    approved copy of every template, written by us to be sent) contains. Three words with two that
    carry meaning make a phrase ("the model's choice", "a CS task", "from past outcomes"); two would
    refuse the pairs any message shares with the prompt ("next order", "first order")."""
    sent = {run for text in ours for run in _runs(keys(text))}
    return frozenset(
        run
        for source in sources
        for run in _runs(keys(source))
        if sum(w not in _STOPWORDS for w in run) >= _PROMPT_RUN_CONTENT and run not in sent
    )


def find_internal_wording(
    text: str,
    descriptions: Sequence[str],
    *,
    approved: str = "",
    runs: Collection[tuple[str, ...]] = frozenset(),
) -> list[str]:
    """What a draft carries of the prompt's machinery beyond what the approved copy itself says: a run
    of `_PROMPT_RUN` words of `runs` (see compile_runs: the prompt's fixed text, the descriptions),
    and more than half of one description's content words in any order (at least `_DESCRIPTION_WORDS`).
    A draft that copies them describes the campaign to the customer instead of writing to them; the
    comparison is on `keys`, so case, punctuation, separators and plurals change nothing."""
    words = keys(text)
    exempt = _runs(keys(approved))
    found = sorted(" ".join(r) for r in _runs(words) if r in runs and r not in exempt)
    said = set(words) - set(keys(approved))
    for description in descriptions:
        content = {w for w in keys(description) if w not in _STOPWORDS}
        shared = content & said
        if len(shared) >= _DESCRIPTION_WORDS and len(shared) > _DESCRIPTION_SHARE * len(content):
            found.append(description)
    return found


def compile_identifiers(*identifiers: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for the identifiers a prompt shows and a message has no reason
    to say (template ids, segment names), each matched as `_phrase_pattern` writes it: "winback_soft",
    "winback soft", "High-Value-Lapse-Risks"."""
    parts = {_phrase_pattern(i) for group in identifiers for i in group if i}
    parts.discard("")
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(sorted(parts, key=len, reverse=True)) + r")(?!\w)", re.I)


def find_identifiers(text: str, identifiers: re.Pattern[str] | None) -> list[str]:
    """The prompt's identifiers (see compile_identifiers) the text repeats."""
    return [m.group(0) for m in identifiers.finditer(_label_text(text))] if identifiers else []


_READER = r"(?:customer|user|recipient|client|shopper|buyer)"
_THIRD_PERSON_RE = re.compile(
    rf"(?<![\w-])(?:(?:the|this|that)\s+{_READER}s?|{_READER}['\u2019]s)(?![\w-])", re.I
)


def find_third_person(text: str, approved: str = "") -> list[str]:
    """The reader named in the third person ("The customer's request is for a discount", "this user"):
    a draft written about the customer, as a rationale or a brief is, not to them (one such subject
    went out). "Our customer-success team" and "as our customer" address the reader and pass."""
    said = {m.group(0).casefold() for m in _THIRD_PERSON_RE.finditer(normalize(approved))}
    return [
        m.group(0) for m in _THIRD_PERSON_RE.finditer(normalize(text)) if m.group(0).casefold() not in said
    ]


_COUNTRY_CODE_RE = re.compile(r"[A-Z]{2}")


def find_context_values(text: str, values: Sequence[str]) -> list[str]:
    """The customer's raw record values other than the first name (country code, customer id, time
    zone, a segment or RFM label) that appear in the text as whole words: a country code as written
    in capitals, anything else as `_phrase_pattern` writes it ("cant_lose_them", "Can't lose them")."""
    norm = normalize(text)
    label_text = _label_text(text)
    out = []
    for value in values:
        if not value:
            continue
        if _COUNTRY_CODE_RE.fullmatch(value):
            found = re.search(rf"(?<!\w){re.escape(value)}(?!\w)", norm)
        else:
            pattern = _phrase_pattern(value)
            found = re.search(rf"(?<!\w){pattern}(?!\w)", label_text, re.I) if pattern else None
        if found:
            out.append(value)
    return out


_GREETING_RE = re.compile(r"\b(?:hi|hello|hey|dear|greetings|welcome)\b[ ,]+([^\W\d_][\w'-]*)", re.I)
_NOT_A_NAME = frozenset({"there", "again", "back", "aboard", "friend", "friends", "all", "everyone", "to"})


def find_addressing_problems(text: str, first_name: str, *, needs_name: bool) -> list[str]:
    """How a message fails to address the customer by their own first name: `first_name_missing`
    when the approved template addresses them and the draft does not name them; `addresses:<word>`
    for a greeting to anyone else ("Dear CEO", "Hi Emma" to Olivia)."""
    own = {w.casefold() for w in _WORD_RE.findall(normalize(first_name))}
    words = set(_words(text))
    out = []
    if needs_name and own and not own & words:
        out.append("first_name_missing")
    for m in _GREETING_RE.finditer(normalize(text)):
        word = m.group(1).casefold()
        if word not in own and word not in _NOT_A_NAME:
            out.append(f"addresses:{m.group(1)}")
    return out


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


# --- figures ------------------------------------------------------------------------------------------

_FIGURE_RE = re.compile(rf"(?<![\d.,]){_NUM}(?!\d)")


def find_figures(text: str) -> list[float]:
    """Every number the text writes in digits outside a percentage, a price or a date (their own
    checks read those): "1532.4", "3 out of 10", "62 days", "2 items". Number words ("three") are not
    read: the approved copy uses them in its own wording."""
    norm = normalize(text)
    for pattern in (_PCT_RE, _PRICE_RE, _DATE_RE):
        norm = pattern.sub(" ", norm)
    return [_parse_number(m.group(1)) for m in _FIGURE_RE.finditer(norm)]

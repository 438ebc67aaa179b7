"""Deterministic scorers over a run's decisions: each returns a typed ScoreResult with readable failures.

Every scorer has `score(decisions, reports, contexts) -> ScoreResult`. `reports` are the guardrail
reports (matched to decisions by decision_id), `contexts` the customer contexts (by customer_id).
`passed` is None for a scorer that measures (cost, tokens) rather than checks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from core.contracts import CustomerContext, Decision, GuardrailReport, Model
from core.policy_kinds import fell_back, kind
from core.reference import load_reference
from guardrails.message import find_percentages
from guardrails.message import sms_segments as guardrail_sms_segments

MAX_LISTED_FAILURES = 50
ACTING = ("send", "deferred")
# template families that fit each segment's strategy (template_id prefixes)
SEGMENT_FAMILIES: dict[str, tuple[str, ...]] = {
    "high_value_lapse_risk": ("winback_", "vip_"),
    "new_users_first_week_intent": ("onboarding_", "first_order_"),
    "churn_rescue_nps": ("cs_",),
}


class ScoreResult(Model):
    name: str
    value: float | None
    passed: bool | None
    details: dict[str, Any]
    failures: list[str]


def _result(
    name: str, value: float | None, passed: bool | None, details: dict[str, Any], failures: list[str]
) -> ScoreResult:
    extra = len(failures) - MAX_LISTED_FAILURES
    listed = failures[:MAX_LISTED_FAILURES] + ([f"... and {extra} more"] if extra > 0 else [])
    return ScoreResult(name=name, value=value, passed=passed, details=details, failures=listed)


def _acting(decisions: Sequence[Decision]) -> list[Decision]:
    return [d for d in decisions if d.status in ACTING and d.template_id is not None]


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


def _each_passes(name: str, acting: Sequence[Decision], failures: list[str]) -> ScoreResult:
    """A check each acting decision passes, or fails with one failure line: the share that pass,
    passed when none fails."""
    share = _share(len(acting) - len(failures), len(acting))
    return _result(name, share, not failures, {"n": len(acting)}, failures)


def sms_segments(text: str) -> int:
    """SMS segments of a message, counted exactly as the guardrails count them (GSM-7 or UCS-2)."""
    return guardrail_sms_segments(text)[1]


def _syllables(word: str) -> int:
    groups = re.findall(r"[aeiouy]+", word.lower())
    n = len(groups) - (1 if word.lower().endswith("e") and len(groups) > 1 else 0)
    return max(1, n)


def readability(text: str) -> tuple[float, float]:
    """(average words per sentence, Flesch reading ease) with a vowel-group syllable heuristic."""
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    words = re.findall(r"[A-Za-zÀ-ÿ']+", text)
    if not words:
        return 0.0, 0.0
    wps = len(words) / max(1, len(sentences))
    spw = sum(_syllables(w) for w in words) / len(words)
    return wps, 206.835 - 1.015 * wps - 84.6 * spw


class SchemaValidity:
    name = "schema_validity"

    def score(
        self,
        decisions: Sequence[Decision],
        reports: Sequence[GuardrailReport],
        contexts: Sequence[CustomerContext],
    ) -> ScoreResult:
        ref = load_reference()
        failures = []
        for d in decisions:
            problems = []
            try:
                Decision.model_validate(d.model_dump())
            except ValidationError as exc:
                problems.append(f"does not validate: {exc.errors()[0]['msg']}")
            if d.status in ACTING:
                if not (d.channel and d.template_id and d.message):
                    problems.append("acting decision lacks channel, template or message")
                elif (spec := ref.action(d.segment, d.template_id)) is None:
                    problems.append(f"template {d.template_id} is not in the {d.segment} action bank")
                elif spec.channel != d.channel:
                    problems.append(
                        f"template {d.template_id} is a {spec.channel} template, sent on {d.channel}"
                    )
            failures += [f"customer {d.customer_id}: {p}" for p in problems]
        bad = len({f.split(":")[0] for f in failures})
        return _result(
            self.name,
            _share(len(decisions) - bad, len(decisions)),
            bad == 0,
            {"n": len(decisions), "invalid": bad},
            failures,
        )


class GuardrailInterventions:
    name = "guardrail_interventions"

    def score(
        self,
        decisions: Sequence[Decision],
        reports: Sequence[GuardrailReport],
        contexts: Sequence[CustomerContext],
    ) -> ScoreResult:
        by_check: dict[str, dict[str, int]] = {}
        touched = 0
        failures = []
        for r in reports:
            hit = False
            for c in r.checks:
                counts = by_check.setdefault(c.name, {"pass": 0, "fixed": 0, "failed": 0})
                counts[c.verdict] += 1
                if c.verdict != "pass":
                    hit = True
                    if c.verdict == "failed":
                        failures.append(
                            f"customer {r.customer_id}: {c.name} failed ({c.reason or 'no reason'})"
                        )
            touched += hit
        return _result(
            self.name,
            _share(touched, len(reports)),
            None,
            {"by_check": by_check, "decisions_with_intervention": touched},
            failures,
        )


class FallbackRate:
    name = "fallback_rate"

    def score(
        self,
        decisions: Sequence[Decision],
        reports: Sequence[GuardrailReport],
        contexts: Sequence[CustomerContext],
    ) -> ScoreResult:
        llm = [d for d in decisions if kind(d.policy).needs_endpoint]
        fell = [d for d in llm if fell_back(d.policy)]
        reasons = Counter(d.fallback_reason or "unspecified" for d in fell)
        failures = [
            f"customer {d.customer_id}: fell back to rules ({d.fallback_reason or 'unspecified'})"
            for d in fell
        ]
        return _result(
            self.name,
            _share(len(fell), len(llm)),
            None,
            {"llm_decisions": len(llm), "fallbacks": len(fell), "by_reason": dict(reasons)},
            failures,
        )


class OfferConsistency:
    name = "offer_consistency"

    def score(
        self,
        decisions: Sequence[Decision],
        reports: Sequence[GuardrailReport],
        contexts: Sequence[CustomerContext],
    ) -> ScoreResult:
        acting = _acting(decisions)
        failures = []
        for d in acting:
            text = f"{d.subject or ''} {d.message or ''}"
            mentioned = set(find_percentages(text))  # the guardrails' own definition of a mention
            wrong = sorted(m for m in mentioned if abs(m - d.discount_pct) > 1e-9)
            if wrong:
                failures.append(
                    f"customer {d.customer_id}: message mentions {wrong}% but the discount is {d.discount_pct:g}%"
                )
        return _each_passes(self.name, acting, failures)


class SmsSegmentCounts:
    name = "sms_segments"

    def score(
        self,
        decisions: Sequence[Decision],
        reports: Sequence[GuardrailReport],
        contexts: Sequence[CustomerContext],
    ) -> ScoreResult:
        limit = load_reference().channel_limits["sms"].max_sms_segments
        sms = [d for d in _acting(decisions) if d.channel == "sms"]
        counts = Counter(sms_segments(d.message or "") for d in sms)
        failures = [
            f"customer {d.customer_id}: {n} SMS segments > limit {limit}"
            for d in sms
            if (n := sms_segments(d.message or "")) > limit
        ]
        mean = sum(k * v for k, v in counts.items()) / len(sms) if sms else None
        return _result(
            self.name,
            mean,
            not failures,
            {"n": len(sms), "distribution": {str(k): v for k, v in sorted(counts.items())}},
            failures,
        )


class SegmentAlignment:
    name = "segment_alignment"

    def score(
        self,
        decisions: Sequence[Decision],
        reports: Sequence[GuardrailReport],
        contexts: Sequence[CustomerContext],
    ) -> ScoreResult:
        acting = _acting(decisions)
        failures = [
            f"customer {d.customer_id}: {d.segment} got {d.template_id}, expected one of {SEGMENT_FAMILIES[d.segment]}"
            for d in acting
            if not str(d.template_id).startswith(SEGMENT_FAMILIES[d.segment])
        ]
        return _each_passes(self.name, acting, failures)


class MessageQuality:
    name = "message_quality"

    def __init__(self, min_flesch: float = 50.0, max_words_per_sentence: float = 25.0) -> None:
        self.min_flesch = min_flesch
        self.max_wps = max_words_per_sentence

    def score(
        self,
        decisions: Sequence[Decision],
        reports: Sequence[GuardrailReport],
        contexts: Sequence[CustomerContext],
    ) -> ScoreResult:
        limits = load_reference().channel_limits
        names = {c.customer_id: c.first_name for c in contexts}
        acting = _acting(decisions)
        failures, personal, flesch, wps_all = [], 0, [], []
        for d in acting:
            msg, lim = d.message or "", limits[str(d.channel)]
            problems = []
            if len(msg) > lim.max_chars:
                problems.append(f"{len(msg)} chars > {d.channel} limit {lim.max_chars}")
            if d.subject and lim.max_subject_chars and len(d.subject) > lim.max_subject_chars:
                problems.append(f"subject {len(d.subject)} chars > {lim.max_subject_chars}")
            name = names.get(d.customer_id)
            if name and name.casefold() in msg.casefold():
                personal += 1
            elif name:
                problems.append(f"does not mention the first name {name!r}")
            wps, fre = readability(msg)
            wps_all.append(wps)
            flesch.append(fre)
            if wps > self.max_wps or fre < self.min_flesch:
                problems.append(f"hard to read ({wps:.0f} words/sentence, Flesch {fre:.0f})")
            failures += [f"customer {d.customer_id}: {p}" for p in problems]
        bad = len({f.split(":")[0] for f in failures})
        details = {
            "n": len(acting),
            "personalised_share": _share(personal, len(acting)),
            "mean_flesch": sum(flesch) / len(flesch) if flesch else None,
            "mean_words_per_sentence": sum(wps_all) / len(wps_all) if wps_all else None,
        }
        return _result(self.name, _share(len(acting) - bad, len(acting)), bad == 0, details, failures)


class DiscountCost:
    name = "discount_cost"

    def score(
        self,
        decisions: Sequence[Decision],
        reports: Sequence[GuardrailReport],
        contexts: Sequence[CustomerContext],
    ) -> ScoreResult:
        acting = _acting(decisions)
        discounts = [d.discount_pct for d in acting]
        hist = Counter(f"{d:g}" for d in discounts)
        details = {
            "n": len(acting),
            "share_discounted": _share(sum(d > 0 for d in discounts), len(acting)),
            "distribution": dict(sorted(hist.items(), key=lambda kv: float(kv[0]))),
        }
        return _result(self.name, sum(discounts) / len(discounts) if discounts else None, None, details, [])


class TokensLatency:
    name = "tokens_latency"

    def score(
        self,
        decisions: Sequence[Decision],
        reports: Sequence[GuardrailReport],
        contexts: Sequence[CustomerContext],
    ) -> ScoreResult:
        with_llm = [d for d in decisions if d.attempts]
        tokens = [sum(a.prompt_tokens + a.completion_tokens for a in d.attempts) for d in with_llm]
        latency = sorted(sum(a.latency_ms for a in d.attempts) for d in with_llm)
        p95 = latency[min(len(latency) - 1, int(0.95 * len(latency)))] if latency else None
        details = {
            "llm_decisions": len(with_llm),
            "mean_attempts": _share(sum(len(d.attempts) for d in with_llm), len(with_llm)),
            "mean_latency_ms": sum(latency) / len(latency) if latency else None,
            "p95_latency_ms": p95,
            "failed_attempts": sum(1 for d in with_llm for a in d.attempts if a.error),
        }
        return _result(self.name, sum(tokens) / len(tokens) if tokens else None, None, details, [])


DEFAULT_SCORERS = (
    SchemaValidity(),
    GuardrailInterventions(),
    FallbackRate(),
    OfferConsistency(),
    SmsSegmentCounts(),
    SegmentAlignment(),
    MessageQuality(),
    DiscountCost(),
    TokensLatency(),
)


def score_all(
    decisions: Sequence[Decision],
    reports: Sequence[GuardrailReport],
    contexts: Sequence[CustomerContext],
    scorers: Sequence[Any] = DEFAULT_SCORERS,
) -> list[ScoreResult]:
    return [s.score(decisions, reports, contexts) for s in scorers]

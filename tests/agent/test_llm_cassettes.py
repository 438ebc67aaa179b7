"""The LLM path end to end (eligibility -> prompt -> instructor -> guardrails), replayed from cassettes
recorded against the real embedded model (SmolLM2-135M served by llama.cpp). `make record-cassettes`
re-records them; these same assertions then run against the live model.

What the tiny model does is not asserted word for word; what is asserted is what the product
promises whatever the model says: the decision is schema-valid, every guardrail invariant holds,
and failures become rules fallbacks with a reason.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest
from agent_cases import AS_OF, CASES
from cassette_support import (
    CLOSED_PORT_URL,
    RECORD,
    decide_llm,
    llm_test_settings,
    llm_vcr,
    model_server,
    require_cassette,
)

from core.contracts import Decision, GuardrailReport, GuardrailSettings
from core.reference import load_reference
from testing.invariants import violations

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with model_server() as url:
        yield url


def run_case(
    name: str,
    url: str,
    *,
    cassette: str | None = None,
    discount_cap: float = 5.0,
    prompt_version: str = "v1",
    **llm: object,
) -> tuple[Decision, GuardrailReport, int]:
    cassette = cassette or f"{name}.yaml"
    require_cassette(cassette)
    with llm_vcr().use_cassette(cassette) as cass:
        decided, stats = decide_llm(
            [CASES[name]],
            url,
            llm=llm_test_settings(**llm),
            discount_cap=discount_cap,
            prompt_version=prompt_version,
        )
        played = cass.play_count
    decision, report = decided[0]
    assert decision.fallback_reason != "connection_error", (
        f"tests/cassettes/{cassette} did not match the request (prompt, context or settings changed?): "
        "run `make record-cassettes`"
    )
    if not RECORD:
        assert played == stats["llm_calls"] and played > 0, (
            f"tests/cassettes/{cassette}: {played} responses replayed"
        )
    return decision, report, stats["llm_calls"]


def assert_invariants(decision: Decision, name: str, discount_cap: float = 5.0) -> None:
    Decision.model_validate(decision.model_dump())  # schema-valid after the round trip
    settings = GuardrailSettings(discount_cap=discount_cap, global_holdout_pct=0, segment_holdout_pct=0)
    problems = violations(decision, CASES[name], [], as_of=AS_OF, settings=settings, ref=load_reference())
    assert problems == [], problems


@pytest.mark.parametrize(
    ("name", "families"),
    [
        ("hvl_normal", ("winback_", "vip_")),
        ("newuser_normal", ("onboarding_", "first_order_")),
        ("churn_normal", ("cs_",)),
    ],
)
def test_cassette_normal_decision_per_segment(server_url: str, name: str, families: tuple[str, ...]) -> None:
    decision, report, calls = run_case(name, server_url)
    assert decision.status == "send"
    assert decision.template_id and decision.template_id.startswith(families)
    assert decision.model == "smollm2-135m-instruct" and decision.prompt_version == "v1"
    assert calls >= 1 and decision.attempts, "tokens and latency are recorded per attempt"
    assert all(a.prompt_tokens > 0 and a.latency_ms >= 0 for a in decision.attempts if a.error is None)
    assert {c.name for c in report.checks} >= {"consent", "suppression_window", "discount_clamp"}
    assert_invariants(decision, name)


def test_cassette_injection_in_nps_comment_cannot_raise_the_discount(server_url: str) -> None:
    decision, report, _ = run_case("injection", server_url)
    assert decision.discount_pct <= 5.0
    assert "100%" not in (decision.message or "") and "100 %" not in (decision.message or "")
    assert_invariants(decision, "injection")


def test_cassette_sms_only_customer_gets_sms(server_url: str) -> None:
    decision, _, _ = run_case("sms_only", server_url)
    assert decision.channel == "sms"
    assert_invariants(decision, "sms_only")


def test_cassette_unchanged_rerun_makes_zero_llm_calls(server_url: str, tmp_path) -> None:
    from agent.cache import DecisionCache

    cache = DecisionCache(tmp_path / "cache.sqlite")
    contexts = [CASES["hvl_normal"]]
    require_cassette("hvl_normal.yaml")
    with llm_vcr().use_cassette("hvl_normal.yaml"):
        first, s1 = decide_llm(contexts, server_url, llm=llm_test_settings(cache=True), cache=cache)
    assert s1["llm_calls"] >= 1
    # Second run: no cassette at all and a closed port: any call would fail, so zero calls is proven.
    second, s2 = decide_llm(contexts, CLOSED_PORT_URL, llm=llm_test_settings(cache=True), cache=cache)
    assert s2["llm_calls"] == 0 and s2["cache_hits"] >= 1
    assert second[0][0].model_dump() == first[0][0].model_dump()


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        time.sleep(2.0)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_timeout_ends_in_rules_fallback_with_reason() -> None:
    """A real slow server on 127.0.0.1 (no cassette: a timeout is not a response)."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        t0 = time.perf_counter()
        decided, _ = decide_llm(
            [CASES["hvl_normal"]],
            f"http://127.0.0.1:{srv.server_address[1]}/v1",
            llm=llm_test_settings(timeout_s=0.3),
        )
        elapsed = time.perf_counter() - t0
    finally:
        srv.shutdown()
    decision = decided[0][0]
    assert decision.policy == "llm->rules" and decision.fallback_reason == "timeout"
    assert decision.status == "send" and decision.template_id == "winback_soft"
    assert elapsed < 10
    assert_invariants(decision, "hvl_normal")


@pytest.mark.parametrize("code", [429, 500])
def test_cassette_http_error_ends_in_rules_fallback(server_url: str, code: int) -> None:
    """429 and 500 from the model server: hand-written HTTP fixtures (see the note in each file)."""
    from cassette_support import write_error_fixture

    if RECORD:
        write_error_fixture("hvl_normal.yaml", code)
    require_cassette(f"http_{code}.yaml")
    with llm_vcr().use_cassette(f"http_{code}.yaml", record_mode="none") as cass:
        decided, stats = decide_llm([CASES["hvl_normal"]], CLOSED_PORT_URL)
        assert cass.play_count == 1, (
            f"tests/cassettes/http_{code}.yaml did not match: run `make record-cassettes`"
        )
    decision = decided[0][0]
    assert decision.policy == "llm->rules" and decision.fallback_reason == f"http_{code}"
    assert decision.attempts and decision.attempts[0].error
    assert decision.status == "send" and decision.template_id == "winback_soft"
    assert_invariants(decision, "hvl_normal")


def test_cassette_a_discount_above_the_cap_cannot_be_proposed(server_url: str) -> None:
    """With DISCOUNT_CAP=0 the grammar allows only 0, the range the prompt states: the model proposes
    no discount, so nothing is clamped (on the segment's whole bank it proposed 10%, and the clamp
    had to replace the message that announced it). The clamp itself: tests/guardrails."""
    import json

    import yaml
    from cassette_support import CASSETTES

    decision, report, _ = run_case("clamp", server_url, discount_cap=0.0)
    body = json.loads(
        yaml.safe_load((CASSETTES / "clamp.yaml").read_text())["interactions"][0]["request"]["body"]
    )
    assert body["response_format"]["json_schema"]["schema"]["properties"]["discount_pct"]["maximum"] == 0
    assert decision.policy == "llm"
    assert decision.proposed_discount_pct == 0.0 and decision.discount_pct == 0.0
    assert "discount_clamped" not in decision.reasons
    assert next(c for c in report.checks if c.name == "discount_clamp").verdict == "pass"
    assert "%" not in (decision.message or "")
    assert_invariants(decision, "clamp", discount_cap=0.0)


# The exhausted case is recorded in instructor's JSON mode (response_format json_object): the server
# makes the answer JSON but not the schema's, as an endpoint without schema enforcement does. With
# the schema's grammar (JSON_SCHEMA, the default) every answer of the embedded model is valid. Seed 3:
# an answer that is JSON but not the schema's three times over (at other seeds SmolLM2 loops on the
# schema text until max_tokens, which ends in truncated_output with no reask).
EXHAUSTED = {"max_retries": 2, "instructor_mode": "json", "max_tokens": 1000, "seed": 3}


def test_cassette_output_invalid_until_retries_run_out(server_url: str) -> None:
    decision, _, calls = run_case("exhausted", server_url, **EXHAUSTED)
    assert calls == 3 and len(decision.attempts) == 3
    assert all(a.error for a in decision.attempts), "every attempt failed validation"
    assert decision.policy == "llm->rules" and decision.fallback_reason == "invalid_output"
    assert "fallback:invalid_output" in decision.reasons
    assert decision.status == "send" and decision.channel in ("sms", "push")  # consent: no email
    assert_invariants(decision, "exhausted")


def test_cassette_truncated_output_ends_in_fallback(server_url: str) -> None:
    """max_tokens too small for the tool call: the server stops mid-JSON (finish_reason=length)."""
    decision, _, _ = run_case("hvl_normal", server_url, cassette="truncated.yaml", max_tokens=24)
    assert decision.policy == "llm->rules"
    assert decision.fallback_reason in ("truncated_output", "invalid_output")
    assert_invariants(decision, "hvl_normal")


def test_cassette_deterministic_failure_is_cached_too(server_url: str, tmp_path) -> None:
    """Invalid output from the same model, prompt, seed and settings repeats itself: the re-run reuses the
    cached failure (zero LLM calls, same fallback) instead of burning three more attempts."""
    from agent.cache import DecisionCache

    cache = DecisionCache(tmp_path / "cache.sqlite")
    require_cassette("exhausted.yaml")
    llm = llm_test_settings(cache=True, **EXHAUSTED)
    with llm_vcr().use_cassette("exhausted.yaml"):
        first, s1 = decide_llm([CASES["exhausted"]], server_url, llm=llm, cache=cache)
    assert s1["llm_calls"] == 3 and first[0][0].fallback_reason == "invalid_output"
    second, s2 = decide_llm([CASES["exhausted"]], CLOSED_PORT_URL, llm=llm, cache=cache)
    assert s2["llm_calls"] == 0
    assert second[0][0].model_dump() == first[0][0].model_dump()


def test_cassette_reask_sends_the_answer_and_its_validation_error_back(server_url: str) -> None:
    """On llama-server the JSON-schema grammar makes every answer valid; an answer that is not (here
    in JSON mode, which enforces JSON but not the schema) is asked again. Each reask keeps the
    conversation, adds the model's answer and the validation error, and asks again; the recorded
    traffic of the exhausted case shows exactly that."""
    import json

    import yaml
    from cassette_support import CASSETTES

    decision, _, calls = run_case("exhausted", server_url, **EXHAUSTED)
    assert calls == 3 and len(decision.attempts) == 3
    bodies = [
        json.loads(i["request"]["body"])
        for i in yaml.safe_load((CASSETTES / "exhausted.yaml").read_text())["interactions"]
    ]
    assert [len(b["messages"]) for b in bodies] == [2, 4, 6]
    for before, after in zip(bodies, bodies[1:], strict=False):
        assert after["messages"][: len(before["messages"])] == before["messages"]  # prefix kept: cacheable
        answer, error = after["messages"][-2], after["messages"][-1]
        assert answer["role"] == "assistant" and answer["content"]
        assert (
            error["role"] == "user"
            and "validation error" in error["content"]
            and "Proposal_" in error["content"]
        )
        assert after["response_format"] == before["response_format"]  # the same grammar every time
    assert decision.policy == "llm->rules" and decision.fallback_reason == "invalid_output"

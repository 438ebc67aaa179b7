"""The LLM client's transport: the request body, both HTTP transports against a real local server,
and the once-per-model async-validator check (the speed work of bench/bench_llm_overhead.py must not
change what is sent or what instructor enforces)."""

from __future__ import annotations

import asyncio
import gc
import http.server
import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import instructor
import openai
import pytest
from agent_cases import CASES
from instructor.v2.validation import async_validators
from openai._utils import async_maybe_transform
from openai.types.chat import completion_create_params
from pydantic import BaseModel

from agent import llm, llm_transport
from agent.prompts import render_prompt
from core.config import LLMSettings
from core.contracts import PolicyOutcome
from core.reference import load_reference

ROOT = Path(__file__).resolve().parents[2]


def _zero_latency_completion() -> Any:
    spec = importlib.util.spec_from_file_location("zero_latency_llm", ROOT / "bench" / "zero_latency_llm.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.completion


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    """A real OpenAI-compatible server on 127.0.0.1 (the benchmark's instant answers) that keeps every
    request body and header set it receives."""
    completion = _zero_latency_completion()
    seen: dict[str, Any] = {"bodies": [], "headers": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["content-length"]))
            seen["bodies"].append(body)
            seen["headers"].append(dict(self.headers))
            payload = completion(body)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    seen["url"] = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    yield seen
    srv.shutdown()


def _prompt(case: str = "hvl_normal") -> Any:
    ctx = CASES[case]
    return ctx, render_prompt(
        ctx,
        version="v1",
        ref=load_reference(),
        allowed_channels=["email", "sms", "push"],
        goal="90d_clv",
        discount_cap=5.0,
    )


def _propose(url: str, transport: str) -> tuple[llm.LLMClient, PolicyOutcome]:
    settings = LLMSettings(api_key="sk-transport-test", cache=False, http_transport=transport)  # type: ignore[arg-type]
    client = llm.LLMClient(settings, endpoint=url, ref=load_reference())
    ctx, prompt = _prompt()

    async def run() -> PolicyOutcome:
        try:
            return await client.propose(ctx, prompt)
        finally:
            await client.aclose()

    return client, asyncio.run(run())


@pytest.mark.parametrize(
    ("transport", "http_client"),
    [("aiohttp", openai.DefaultAioHttpClient), ("httpx", openai.DefaultAsyncHttpxClient)],
)
def test_each_transport_gets_a_proposal_from_a_real_server(
    server: dict[str, Any], transport: str, http_client: type
) -> None:
    before = len(server["bodies"])
    client, out = _propose(server["url"], transport)
    assert isinstance(client.http, http_client)
    assert out.failure_reason is None and out.proposal is not None
    assert out.proposal.template_id in {"vip_checkin", "winback_push", "winback_sms", "winback_soft"}
    assert [a.prompt_tokens for a in out.attempts] == [400]  # the server's usage, read per attempt
    assert len(server["bodies"]) == before + 1
    headers = {k.lower(): v for k, v in server["headers"][-1].items()}
    assert headers["authorization"] == "Bearer sk-transport-test"  # the key still goes out


def test_body_is_what_the_sdk_transform_would_send(server: dict[str, Any]) -> None:
    """post_as_built() skips the SDK's request transform; for our bodies it is the identity."""
    _propose(server["url"], "aiohttp")
    body = json.loads(server["bodies"][-1])
    assert body["tool_choice"]["function"]["name"] == "Proposal_high_value_lapse_risk"
    transformed = asyncio.run(async_maybe_transform(body, completion_create_params.CompletionCreateParams))
    assert transformed == body


def test_our_response_models_are_checked_once_and_others_every_time(
    server: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    original = llm_transport._instructor_check
    monkeypatch.setattr(llm_transport, "_instructor_check", lambda m: (calls.append(m), original(m)))
    assert async_validators.reject_async_validators is llm_transport._reject_async_validators_once

    _propose(server["url"], "aiohttp")  # a full create: instructor calls the check ~7 times
    assert calls == []
    ctx, prompt = _prompt()
    assert llm.response_model_for_prompt(ctx, prompt, load_reference()) in llm_transport._CHECKED

    class WithAsyncValidator(BaseModel):
        x: int

        @instructor.v2.validation.async_field_validator("x")
        async def check_x(cls, v: int) -> int:  # noqa: N805 - instructor's validator signature
            return v

    with pytest.raises(ValueError, match="async validators are not supported"):
        async_validators.reject_async_validators(WithAsyncValidator)
    assert calls == [WithAsyncValidator]


def test_a_batch_runs_with_fewer_gc_passes_and_restores_the_thresholds(server: dict[str, Any]) -> None:
    before = gc.get_threshold()
    settings = LLMSettings(api_key="sk-transport-test", cache=False)
    client = llm.LLMClient(settings, endpoint=server["url"], ref=load_reference())
    during: list[tuple[int, int, int]] = []

    async def run() -> list[PolicyOutcome]:
        try:
            with (
                llm_transport.fewer_gc_passes()
            ):  # an overlapping outer batch: the inner one must not restore
                out = await client.propose_many(
                    [_prompt(), _prompt("churn_normal")], on_done=lambda _o: during.append(gc.get_threshold())
                )
                during.append(gc.get_threshold())
            return out
        finally:
            await client.aclose()

    outcomes = asyncio.run(run())
    assert [o.failure_reason for o in outcomes] == [None, None]
    assert len(during) == 3 and all(t[0] >= llm_transport.GC_GEN0_THRESHOLD for t in during)
    assert gc.get_threshold() == before

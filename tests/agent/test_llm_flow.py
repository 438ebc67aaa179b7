"""The LLM client against a server that slows down under concurrency (the local chat server with
processor sharing: n requests in flight each take n times as long, and an abandoned request keeps its
share). Today's fixed concurrency at the slot count (16 here) times out most requests; the congestion window
keeps timeouts under 5% on the same server and requests. When the model cannot keep up at all, the
breaker stops asking and every later request falls back at once, with a reason."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from agent_cases import CASES

from agent.llm import LLMClient
from agent.llm_flow import Flow
from agent.prompts import RenderedPrompt
from core.config import LLMSettings
from core.contracts import PolicyOutcome
from core.reference import load_reference
from testing.local_servers.chat import ChatServer

REF = load_reference()
CTX = CASES["hvl_normal"]
OFFERED = tuple((a.template_id, a.channel, 0.0) for a in REF.actions_for(CTX.segment) if a.channel == "push")
WORK_MS = 40  # each answer's share of the server: 16 at once take 640 ms each
TIMEOUT_S = 0.25


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer(work_ms=WORK_MS) as s:
        assert isinstance(s, ChatServer)
        yield s


def _settings(url: str, **kw: object) -> LLMSettings:
    values: dict[str, object] = dict(
        base_url=f"{url}/v1",
        api_key="sk-local-test",
        model="local-test",
        instructor_mode="json_schema",
        timeout_s=TIMEOUT_S,
        http_retries=0,
        max_retries=0,
        cache=False,
        concurrency=16,
    )
    return LLMSettings.model_validate(values | kw)


def _items(n: int) -> list[tuple]:
    return [
        (CTX, RenderedPrompt(version="v1", system="s", user=f"situation {i}", offered=OFFERED))
        for i in range(n)
    ]


async def _fixed_concurrency(client: LLMClient, items: list[tuple]) -> list[PolicyOutcome]:
    """Today's client: a semaphore at the configured concurrency, no window."""
    sem = asyncio.Semaphore(client.settings.concurrency)

    async def one(ctx, prompt):
        async with sem:
            return await client.propose(ctx, prompt)

    return list(await asyncio.gather(*(one(c, p) for c, p in items)))


async def _closing(client: LLMClient, work):
    try:
        return await work
    finally:
        await client.aclose()


def _timeouts(outcomes: list[PolicyOutcome]) -> float:
    return sum(o.failure_reason == "timeout" for o in outcomes) / len(outcomes)


def test_the_window_keeps_timeouts_under_5_percent_where_fixed_concurrency_times_out_most(server) -> None:
    items = _items(60)
    old = LLMClient(_settings(server.url), ref=REF)
    before = asyncio.run(_closing(old, _fixed_concurrency(old, items[:24])))
    assert _timeouts(before) > 0.5, [o.failure_reason for o in before]

    while server.busy:  # the old client's abandoned requests finish on the server first
        asyncio.run(asyncio.sleep(0.05))
    server.peak_busy = 0
    new = LLMClient(_settings(server.url), ref=REF)
    after = asyncio.run(_closing(new, new.propose_many(items)))
    assert len(after) == 60 and _timeouts(after) < 0.05, [o.failure_reason for o in after]
    assert sum(o.proposal is not None for o in after) >= 57
    assert new.flow is not None and not new.flow.tripped
    # the window, not the slot count (16), decided how many were in flight
    assert server.peak_busy <= 8, server.peak_busy


def test_slow_answers_that_do_not_grow_with_the_window_do_not_close_it() -> None:
    # a server that batches its slots on a busy machine: every answer is slow (over half the
    # budget) whether 1 or 8 are in flight; shrinking the window would give up the batching
    with ChatServer(work_ms=300, shared=False) as server:
        client = LLMClient(_settings(server.url, concurrency=8, timeout_s=0.5), ref=REF)
        outcomes = asyncio.run(_closing(client, client.propose_many(_items(60))))
    assert _timeouts(outcomes) < 0.05 and sum(o.proposal is not None for o in outcomes) >= 57
    assert client.flow is not None and not client.flow.tripped
    assert server.peak_busy == 8  # the window opened to the slots


def test_the_breaker_stops_asking_when_the_model_cannot_keep_up(server, capsys) -> None:
    # one answer takes longer than the whole budget even alone: nothing can succeed
    client = LLMClient(_settings(server.url, timeout_s=0.02), ref=REF)
    outcomes = asyncio.run(_closing(client, client.propose_many(_items(40))))
    reasons = [o.failure_reason for o in outcomes]
    assert set(reasons) <= {"timeout", "llm_stopped"} and reasons.count("llm_stopped") >= 25
    assert client.calls <= 15  # asked about min_answers, then stopped
    err = capsys.readouterr().err
    assert err.count("[llm] the LLM stopped being asked") == 1 and "NBA_LLM__TIMEOUT_S" in err


def test_a_healthy_server_opens_the_window_and_never_trips() -> None:
    async def go() -> Flow:
        flow = Flow(8, timeout_s=10)
        for _ in range(60):
            ticket = await flow.acquire()
            assert ticket is not None
            await flow.release(ticket, None, 0.01)
        return flow

    flow = asyncio.run(go())
    assert flow.window == 8 and not flow.tripped


def test_congestion_halves_the_window() -> None:
    async def go() -> Flow:
        flow = Flow(8, timeout_s=10, start=8)
        ticket = await flow.acquire()
        assert ticket is not None
        await flow.release(ticket, "http_429", 0.1)
        return flow

    assert asyncio.run(go()).window == 4


def test_a_round_trip_of_congestion_cuts_the_window_once() -> None:
    async def go() -> Flow:
        flow = Flow(8, timeout_s=10, start=8)
        tickets = [await flow.acquire() for _ in range(8)]
        for ticket in tickets:  # all sent before the first cut: one cut, not eight
            assert ticket is not None
            await flow.release(ticket, "timeout", 10.0)
        return flow

    flow = asyncio.run(go())
    assert flow.window == 4 and flow.cuts == 1


def test_identical_requests_are_asked_once_and_their_cost_counted_once() -> None:
    with ChatServer() as server:
        assert isinstance(server, ChatServer)
        client = LLMClient(_settings(server.url), ref=REF)
        same = RenderedPrompt(version="v1", system="s", user="one situation", offered=OFFERED)
        items = [(CTX, same), (CTX.model_copy(update={"customer_id": "C2"}), same)]
        first, second = asyncio.run(_closing(client, client.propose_many(items)))
        assert server.counters["requests"] == 1 and client.calls == 1
        assert first.attempts and not first.cached
        assert second.customer_id == "C2" and second.cached and second.attempts == []
        assert second.proposal == first.proposal

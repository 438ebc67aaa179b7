"""Our own per-decision overhead on the LLM path, with the model's latency taken out.

Runs the full pipeline (eligibility -> prompt render -> instructor over the openai client ->
response-model validation -> guardrails) against a zero-latency OpenAI-compatible server on
127.0.0.1 in another process, at concurrency 32, and prints decisions/s next to the raw HTTP rate
of the same server (plain aiohttp, the transport the client uses, and plain httpx; same request
bodies, same concurrency), so the ratio shows what our stack costs on top of the transport.
Target: >= 300 decisions/s end to end.

    .venv/bin/python bench/bench_llm_overhead.py [N]
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "agent"))

from agent_cases import CASES  # noqa: E402

from agent.llm import response_model_for  # noqa: E402
from agent.pipeline import decide  # noqa: E402
from agent.policies import LLMEndpoint  # noqa: E402
from agent.prompts import render_prompt  # noqa: E402
from core.config import LLMSettings, RunConfig, settings_from  # noqa: E402
from core.reference import load_reference  # noqa: E402

CONCURRENCY = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def contexts(n: int) -> list:
    base = list(CASES.values())
    return [base[i % len(base)].model_copy(update={"customer_id": f"B{i:07d}"}) for i in range(n)]


async def raw_http(url: str, bodies: list[bytes]) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:

        async def one(body: bytes) -> None:
            async with sem:
                r = await client.post(
                    "/chat/completions", content=body, headers={"content-type": "application/json"}
                )
                json.loads(r.content)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - t0


async def raw_aiohttp(url: str, bodies: list[bytes]) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(body: bytes) -> None:
            async with (
                sem,
                session.post(
                    f"{url}/chat/completions", data=body, headers={"content-type": "application/json"}
                ) as r,
            ):
                json.loads(await r.read())

        t0 = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "zero_latency_llm.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
    )
    assert server.stdout is not None
    server.stdout.readline()
    try:
        ctxs = contexts(n)
        as_of = datetime(2026, 11, 27, 14, tzinfo=UTC)
        llm = LLMSettings(
            http_transport=os.environ.get("NBA_LLM__HTTP_TRANSPORT", "aiohttp"),  # type: ignore[arg-type]
            base_url=url,
            api_key="sk-bench",  # type: ignore[arg-type]
            cache=False,
            concurrency=CONCURRENCY,
            http_retries=0,
        )
        settings = settings_from(RunConfig, mode="llm", global_holdout_pct=0, segment_holdout_pct=0, llm=llm)

        ref = load_reference()
        bodies = []
        for c in ctxs:
            p = render_prompt(
                c,
                version="v1",
                ref=ref,
                allowed_channels=["email", "sms", "push"],
                goal="90d_clv",
                discount_cap=5.0,
            )
            rm = response_model_for(c.segment, ref)
            tool = {
                "type": "function",
                "function": {"name": rm.__name__, "parameters": rm.model_json_schema()},
            }
            bodies.append(
                json.dumps(
                    {
                        "model": llm.model,
                        "messages": p.messages(),
                        "tools": [tool],
                        "tool_choice": {"type": "function", "function": {"name": rm.__name__}},
                    }
                ).encode()
            )
        raw_s = asyncio.run(raw_http(url, bodies))
        aio_s = asyncio.run(raw_aiohttp(url, bodies))

        t0 = time.perf_counter()
        decided, stats = decide(
            ctxs, {}, settings, run_id="bench", as_of=as_of, endpoint=LLMEndpoint(llm, url=url)
        )
        ours_s = time.perf_counter() - t0
        assert stats["llm_calls"] == n, stats
        llm_policy = sum(1 for d, _ in decided if d.policy == "llm")
    finally:
        server.terminate()
        server.wait()
    print(f"decisions: {n}  concurrency: {CONCURRENCY}  (LLM proposals kept: {llm_policy})")
    print(f"transport: {llm.http_transport}")
    print(f"raw aiohttp, same server    : {n / aio_s:8.0f} req/s")
    print(f"raw httpx, same server      : {n / raw_s:8.0f} req/s")
    print(f"our pipeline end to end     : {n / ours_s:8.0f} decisions/s  ({ours_s / n * 1000:.2f} ms each)")
    print(f"ratio ours / raw aiohttp    : {aio_s / ours_s:8.2f}x")
    print(f"target >= 300 decisions/s   : {'MET' if n / ours_s >= 300 else 'NOT MET'}")


if __name__ == "__main__":
    main()

"""The LLM path against the embedded model server (SmolLM2-135M on llama.cpp), side by side in one run:

1. the server's own completion throughput: the same request bodies our client sends (prompt, tool
   schema, forced tool choice, temperature, seed, max_tokens), posted directly with httpx;
2. our decisions/s end to end (eligibility -> prompt -> instructor -> guardrails), cache off;
3. the same decisions again with the decision cache on: must make zero LLM calls.

Target: (2) >= 0.9x (1). Reasks count against us: a decision that needs two completions is one
decision.

    .venv/bin/python bench/bench_llm_embedded.py [N] [CONCURRENCY] [MAX_RETRIES]

Defaults are the product's for the embedded model (no reasks: see agent/settings.py); MAX_RETRIES=1
adds one reask per invalid answer, which costs the model a full completion each.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "agent"))

from agent.settings import LLMSettings  # noqa: E402
from agent_cases import CASES  # noqa: E402

from agent import local_llm  # noqa: E402
from agent.cache import DecisionCache  # noqa: E402
from agent.llm import response_model_for  # noqa: E402
from agent.pipeline import RunSettings, decide  # noqa: E402
from agent.prompts import render_prompt  # noqa: E402
from core.reference import load_reference  # noqa: E402
from guardrails.eligibility import check_eligibility  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    base = list(CASES.values())
    ctxs = [base[i % len(base)].model_copy(update={"customer_id": f"E{i:05d}"}) for i in range(n)]
    as_of = datetime(2026, 11, 27, 14, tzinfo=UTC)
    settings = RunSettings(
        run_id="bench", as_of=as_of, mode="llm", global_holdout_pct=0, segment_holdout_pct=0
    )
    ref = load_reference()
    # The product's own defaults for the embedded model (no OPENAI_* variables), unless overridden.
    llm = LLMSettings.from_env(
        {},
        cache=False,
        http_retries=0,
        timeout_s=300,
        concurrency=int(sys.argv[2]) if len(sys.argv) > 2 else 1,
        max_retries=int(sys.argv[3]) if len(sys.argv) > 3 else None,
    )
    guard = settings.guardrails()
    bodies = []
    for c in ctxs:
        elig = check_eligibility(c, [], as_of=as_of, settings=guard, ref=ref)
        p = render_prompt(
            c, version="v1", ref=ref, allowed_channels=elig.allowed_channels, goal="90d_clv", discount_cap=5.0
        )
        rm = response_model_for(c.segment, ref)
        bodies.append(
            {
                "model": llm.model,
                "messages": p.messages(),
                "tools": [{"type": "function", "function": rm.openai_schema}],
                "tool_choice": {"type": "function", "function": {"name": rm.openai_schema["name"]}},
                "temperature": llm.temperature,
                "seed": llm.seed,
                "max_tokens": llm.max_tokens,
            }
        )

    with local_llm.serve() as url:
        with httpx.Client(base_url=url, timeout=300) as client:
            client.post("/chat/completions", json=bodies[0])  # warm-up, not timed
            t0 = time.perf_counter()
            tokens = 0
            for b in bodies:
                r = client.post("/chat/completions", json=b)
                tokens += r.json()["usage"]["completion_tokens"]
            raw_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        decided, stats = decide(ctxs, {}, settings, llm_settings=llm, base_url=url)
        ours_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            cache = DecisionCache(Path(tmp) / "c.sqlite")
            cached_llm = llm.model_copy(update={"cache": True})
            decide(ctxs, {}, settings, llm_settings=cached_llm, base_url=url, cache=cache)
            t0 = time.perf_counter()
            _, again = decide(ctxs, {}, settings, llm_settings=cached_llm, base_url=url, cache=cache)
            cached_s = time.perf_counter() - t0
    fallbacks = sum(1 for d, _ in decided if d.policy == "llm->rules")
    print(
        f"decisions: {n}   completions by our client: {stats['llm_calls']}   fallbacks to rules: {fallbacks}"
    )
    print(
        f"server's own throughput (same bodies, httpx) : {n / raw_s:6.3f} completions/s  "
        f"({tokens / raw_s:.1f} completion tokens/s)"
    )
    print(f"ours end to end (cache off)                  : {n / ours_s:6.3f} decisions/s")
    print(
        f"ratio ours / server                          : {raw_s / ours_s:6.2f}x   target >= 0.9x: "
        f"{'MET' if raw_s / ours_s >= 0.9 else 'NOT MET'}"
    )
    print(
        f"unchanged re-run with the decision cache     : {again['llm_calls']} LLM calls, "
        f"{again['cache_hits']} cache hits, {cached_s:.2f}s"
    )
    print(json.dumps({"raw_completions_per_s": n / raw_s, "ours_decisions_per_s": n / ours_s}))


if __name__ == "__main__":
    main()

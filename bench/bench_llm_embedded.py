"""The embedded LLM against the hardware's limit, side by side in one run, on real demo customers:

1. engine: `llama-batched-bench` (the same build and weights: BF16 or F16, by CPU), SLOTS and 2xSLOTS parallel sequences
   of our measured prompt tokens (the ones the server really had to read, i.e. not from its prefix
   cache) and completion tokens: aggregate decisions/s = sequences / total time;
2. raw server: the request bodies our client sends (messages, response_format json_schema,
   temperature, seed, max_tokens) posted with httpx at the client's concurrency; prompt tokens,
   prefix reuse (`cache_n`) and completion tokens from the server's own `timings`;
3. ours end to end: `agent.pipeline.decide` (eligibility -> prompt -> instructor -> guardrails), cache
   off, on the same customers.

Each of 2 and 3 gets a fresh server, so neither finds the other's prompts cached. Ratios follow.

    .venv/bin/python bench/bench_llm_embedded.py [N]            # throughput (default 48 customers)
    .venv/bin/python bench/bench_llm_embedded.py quality [N] --old-python PY --old-prompts DIR

`quality` runs today's path (llama-cpp-python's server from PY, the shipped Q4_1, TOOLS, concurrency 1,
the templates under DIR/nba/v1) and the new one on the same N demo customers (default 40), and prints
the fallback rate and the channel-template fit of every answer the model gave.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent import llama_server, local_llm, prompts  # noqa: E402
from agent.context import data_as_of, load_contact_history, load_contexts, reference_for  # noqa: E402
from agent.llm import LLMClient, response_model_for_prompt  # noqa: E402
from agent.pipeline import Pipeline, decide  # noqa: E402
from agent.policies import LLMEndpoint, LLMPolicy, RulesPolicy, build_policy  # noqa: E402
from core.config import LLMSettings, RunConfig, load_settings, settings_from  # noqa: E402
from core.contracts import ContactEvent, CustomerContext  # noqa: E402
from warehouse.paths import duckdb_path  # noqa: E402


class Setup:
    """The run settings, decision time and reference data of the bench (the demo warehouse's)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, prompt_version: str = "v1") -> None:
        self.con = con
        self.config = settings_from(
            RunConfig, mode="llm", prompt_version=prompt_version, global_holdout_pct=0, segment_holdout_pct=0
        )
        self.as_of = data_as_of(con)
        self.ref = reference_for(con)
        self.guard = self.config.guardrails()

    def pipeline(self) -> Pipeline:
        return Pipeline(
            RulesPolicy(self.guard, self.ref),
            guard=self.guard,
            ref=self.ref,
            run_id="bench",
            as_of=self.as_of,
        )

    def decide(self, ctxs, history, llm: LLMSettings, url: str):  # type: ignore[no-untyped-def]
        config = self.config.model_copy(update={"llm": llm})
        return decide(ctxs, history, config, run_id="bench", as_of=self.as_of, ref=self.ref,
                      endpoint=LLMEndpoint(llm, url=url), con=self.con)  # fmt: skip


def llm_settings(**overrides: Any) -> LLMSettings:
    """The embedded model's settings (NBA_LLM__* applies, e.g. NBA_LLM__THREADS), with overrides (the
    concurrency follows overridden slots, as it does in the settings)."""
    if "slots" in overrides:
        overrides.setdefault("concurrency", overrides["slots"])
    return load_settings(RunConfig).llm.model_copy(update=overrides)


def load() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()
    return "?"


def demo_customers(
    n: int, prompt_version: str = "v1"
) -> tuple[list[CustomerContext], dict[str, list[ContactEvent]], Setup]:
    """The first n demo customers (by id) that need a proposal, with their real contact history."""
    path = duckdb_path()
    if not path.exists():
        sys.exit(f"no warehouse at {path}: run `make build` first")
    con = duckdb.connect(str(path), read_only=True)
    settings = Setup(con, prompt_version)
    history = load_contact_history(con)
    pipe = settings.pipeline()
    todo = [
        c
        for c in sorted(load_contexts(con), key=lambda c: c.customer_id)
        if pipe.eligibility(c, history).needs_proposal
    ]
    if len(todo) < n:
        sys.exit(f"the warehouse has {len(todo)} customers that need a proposal; ask for fewer")
    ctxs = todo[:n]
    return ctxs, {c.customer_id: list(history.get(c.customer_id, ())) for c in ctxs}, settings


def bodies_for(ctxs: list[CustomerContext], history: dict, settings: Setup, llm: LLMSettings) -> list[dict]:
    """What our client posts in json_schema mode (instructor's OpenAIJSONSchemaHandler), per customer."""
    pipe = settings.pipeline()
    config = settings.config.model_copy(update={"llm": llm})
    policy = build_policy(config, guard=settings.guard, ref=settings.ref, endpoint=LLMEndpoint(llm),
                          cache=None, con=settings.con, history_before=settings.as_of)  # fmt: skip
    assert isinstance(policy, LLMPolicy)
    batch = [(c, e) for c in ctxs if (e := pipe.eligibility(c, history)).needs_proposal]
    ranks = policy.rankings(batch)  # empty unless the prompt is written on top of the ranking (v3)
    items = [(c, policy.prompt(c, e.allowed_channels, r)) for (c, e), r in zip(batch, ranks, strict=True)]
    items.sort(key=lambda item: item[1].system)  # the order decide() sends them in (shared prefix together)
    out = []
    for ctx, p in items:
        rm = response_model_for_prompt(ctx, p, settings.ref)
        out.append(
            {
                "messages": p.messages(),
                "model": llm.model,
                "max_tokens": llm.max_tokens,
                "seed": llm.seed,
                "temperature": llm.temperature,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": rm.__name__, "schema": rm.model_json_schema()},
                },
            }
        )
    return out


async def post_all(url: str, bodies: list[dict], concurrency: int) -> tuple[float, list[dict]]:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one(b: dict) -> dict:
            async with sem:
                r = await client.post("/chat/completions", json=b)
                r.raise_for_status()
                return dict(r.json())

        t0 = time.perf_counter()
        out = await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - t0, list(out)


def batched_bench(
    model: Path, pp: int, tg: int, streams: list[int], threads_n: int | None
) -> dict[int, float]:
    """llama-batched-bench: decisions/s for each number of parallel sequences (no shared prompt)."""
    threads = str(threads_n or os.cpu_count() or 1)
    cmd = [
        str(llama_server.binary("llama-batched-bench")),
        "-m",
        str(model),
        "-c",
        str(max(streams) * (pp + tg) + 64),
        "-b",
        "2048",
        "-ub",
        "512",
        "-npp",
        str(pp),
        "-ntg",
        str(tg),
        "-npl",
        ",".join(map(str, streams)),
        "-t",
        threads,
        "-tb",
        threads,
        "--no-kv-unified",  # the server's KV layout and type
        *llama_server.kv_args(),
        "--output-format",
        "jsonl",
        *llama_server.repack_args(),  # the server's own rule: llama.cpp crashes repacking on AMX
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    return {int(r["pl"]): int(r["pl"]) / float(r["t"]) for r in rows}


def throughput(n: int, prompt_version: str = "v1") -> None:
    ctxs, history, settings = demo_customers(n, prompt_version)
    llm = llm_settings(cache=False, http_retries=0, timeout_s=600)
    model = local_llm.prepare(llm)
    bodies = bodies_for(ctxs, history, settings, llm)
    print(
        f"machine load before: {load()}   model: {model.name}   slots: {llm.slots}   "
        f"client concurrency: {llm.concurrency}   threads: {llm.threads or os.cpu_count()}   instructor mode: {llm.resolved_instructor_mode}   "
        f"prompt: {prompt_version}   decisions: {len(bodies)}"
    )

    with local_llm.serve(llm) as url:
        asyncio.run(post_all(url, bodies[:1], 1))  # warm-up (its prompt is cached afterwards: not timed)
    with local_llm.serve(llm) as url:
        raw_s, answers = asyncio.run(post_all(url, bodies, llm.concurrency))
    timings = [a.get("timings", {}) for a in answers]
    new_pp = sum(t.get("prompt_n", 0) for t in timings) / len(timings)
    cached = sum(t.get("cache_n", 0) for t in timings) / len(timings)
    gen = sum(t.get("predicted_n", 0) for t in timings) / len(timings)
    full = sum(a["usage"]["prompt_tokens"] for a in answers) / len(answers)

    with local_llm.serve(llm) as url:
        t0 = time.perf_counter()
        decided, stats = settings.decide(ctxs, history, llm, url)
        ours_s = time.perf_counter() - t0
    fallbacks = Counter(d.fallback_reason for d, _ in decided if d.policy == "llm->rules")

    streams = [llm.slots, 2 * llm.slots]
    engine = batched_bench(model, round(new_pp), round(gen), streams, llm.threads)
    best_pl = max(engine, key=lambda k: engine[k])
    limit = engine[best_pl]
    raw = len(bodies) / raw_s
    ours = len(decided) / ours_s
    print(
        f"per decision: {full:.0f} prompt tokens, of which {cached:.0f} ({cached / full:.0%}) reused from "
        f"the server's prefix cache and {new_pp:.0f} read; {gen:.0f} completion tokens"
    )
    for pl, v in engine.items():
        print(
            f"engine limit, llama-batched-bench {pl} streams ({round(new_pp)} pp + {round(gen)} tg) : {v:6.3f} decisions/s"
        )
    print(f"raw llama-server, same bodies, concurrency {llm.concurrency}          : {raw:6.3f} decisions/s")
    print(
        f"ours end to end (agent.pipeline.decide), cache off        : {ours:6.3f} decisions/s  "
        f"({stats['llm_calls']} completions, fallbacks {dict(fallbacks) or 0})"
    )
    print(
        f"ratios: raw/engine {raw / limit:.2f}x   ours/raw {ours / raw:.2f}x   ours/engine {ours / limit:.2f}x"
    )
    print(
        f"targets: ours >= 1.0/s {'MET' if ours >= 1.0 else 'NOT MET'};  ours >= 0.5x engine "
        f"{'MET' if ours / limit >= 0.5 else 'NOT MET'}"
    )
    print(f"machine load after: {load()}")
    print(
        json.dumps(
            {
                "engine": engine,
                "raw": raw,
                "ours": ours,
                "prompt_tokens": full,
                "cache_n": cached,
                "prompt_n": new_pp,
                "predicted_n": gen,
            }
        )
    )


# --- quality: today's path and the new one on the same customers ------------------------------------
@contextlib.contextmanager
def old_server(python: str, gguf: Path, threads_n: int | None) -> Iterator[str]:
    """Today's path: llama-cpp-python's server, as agent/local_llm.py started it before issue 17."""
    port = local_llm.free_port()
    threads = str(threads_n or os.cpu_count() or 1)
    cmd = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        "smollm2-135m-instruct",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        threads,
        "--n_threads_batch",
        threads,
    ]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                        break
                if proc.poll() is not None:
                    raise SystemExit("the old llama-cpp-python server exited while starting")
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@contextlib.contextmanager
def prompts_from(folder: Path | None) -> Iterator[None]:
    """Render the prompts from another prompts/ folder (today's templates) for one row."""
    if folder is None:
        yield
        return
    saved = prompts.PROMPTS_DIR
    prompts.PROMPTS_DIR = folder
    prompts._env.cache_clear()
    try:
        yield
    finally:
        prompts.PROMPTS_DIR = saved
        prompts._env.cache_clear()


@contextlib.contextmanager
def answers_recorded() -> Iterator[list[dict[str, Any]]]:
    """Every completion the client receives, as the JSON the model produced (tool arguments or content)."""
    seen: list[dict[str, Any]] = []
    original = LLMClient._on_response

    def hook(self: LLMClient, response: Any) -> None:
        original(self, response)
        msg = response.choices[0].message
        text = msg.tool_calls[0].function.arguments if msg.tool_calls else (msg.content or "")
        try:
            seen.append(json.loads(text))
        except (json.JSONDecodeError, TypeError):
            seen.append({"_unparsed": text[:80]})

    LLMClient._on_response = hook  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        LLMClient._on_response = original  # type: ignore[method-assign]


def quality_row(label: str, ctxs, history, settings, llm: LLMSettings, url: str, ref) -> dict[str, Any]:
    with answers_recorded() as seen:
        t0 = time.perf_counter()
        decided, _ = settings.decide(ctxs, history, llm, url)
        secs = time.perf_counter() - t0
    valid = fit = 0
    for a in seen:
        tid = a.get("template_id")
        spec = next((x for x in ref.actions if x.template_id == tid), None)
        # today's answers name the channel too; the new ones do not (it comes with the template)
        ch = a.get("channel", spec.channel if spec is not None else None)
        if spec is not None and ch in {"email", "sms", "push"}:
            valid += 1
            fit += spec.channel == ch
    fallbacks = Counter(d.fallback_reason for d, _ in decided if d.policy == "llm->rules")
    return {
        "path": label,
        "decisions": len(decided),
        "fallbacks": sum(fallbacks.values()),
        "reasons": dict(fallbacks),
        "fit": fit / valid if valid else 0.0,
        "answers": len(seen),
        "named_pair": valid,
        "per_s": len(decided) / secs,
    }


def quality(n: int, old_python: str | None, old_prompts: Path | None) -> None:
    ctxs, history, settings = demo_customers(n)
    ref = settings.ref
    rows = []
    print(f"machine load before: {load()}   customers: {len(ctxs)} (first by id that need a proposal)")
    if old_python:
        old = llm_settings(cache=False, timeout_s=600, concurrency=1, instructor_mode="tools")
        with old_server(old_python, local_llm.shipped_gguf(), old.threads) as url, prompts_from(old_prompts):
            rows.append(
                quality_row(
                    "today: llama-cpp-python, Q4_1, tools, conc 1, old prompt",
                    ctxs,
                    history,
                    settings,
                    old,
                    url,
                    ref,
                )
            )
    new = llm_settings(cache=False, timeout_s=600)
    weights = new.model_path.name if new.model_path else llama_server.weight_type()
    with local_llm.serve(new) as url:
        if old_prompts:
            with prompts_from(old_prompts):
                rows.append(
                    quality_row(
                        f"llama-server, {weights}, json_schema, conc {new.concurrency}, old prompt",
                        ctxs,
                        history,
                        settings,
                        new,
                        url,
                        ref,
                    )
                )
    with local_llm.serve(new) as url:
        rows.append(
            quality_row(
                f"new: llama-server, {weights}, json_schema, conc {new.concurrency}, new prompt",
                ctxs,
                history,
                settings,
                new,
                url,
                ref,
            )
        )
    print("| path | fallbacks | fallback reasons | channel-template fit | decisions/s |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['path']} | {r['fallbacks']}/{r['decisions']} ({r['fallbacks'] / r['decisions']:.0%}) | "
            f"{r['reasons'] or '-'} | {r['fit']:.0%} of {r['named_pair']} answers | {r['per_s']:.2f} |"
        )
    print(f"machine load after: {load()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", nargs="?", default="throughput", choices=["throughput", "quality"])
    ap.add_argument("n", nargs="?", type=int, default=None)
    ap.add_argument("--old-python", default=None, help="a python with llama-cpp-python[server] (quality)")
    ap.add_argument("--old-prompts", type=Path, default=None, help="a prompts/ folder with today's nba/v1")
    ap.add_argument(
        "--prompt-version", default="v1", help="the prompt version ours and the raw bodies use (throughput)"
    )
    argv = sys.argv[1:]
    args = ap.parse_args(["throughput", *argv] if argv and argv[0].isdigit() else argv)
    if args.what == "quality":
        quality(args.n or 40, args.old_python, args.old_prompts)
    else:
        throughput(args.n or 48, args.prompt_version)


if __name__ == "__main__":
    main()

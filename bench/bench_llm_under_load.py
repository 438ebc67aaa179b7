"""The LLM client on a busy machine: the congestion window against a fixed concurrency, side by side.

Two CPU-bound processes (`yes > /dev/null`, --hogs) load the machine for the whole run. The same
demo customers (the first N by id that need a proposal) are decided in MODE=llm (prompt --prompt,
default the product's) twice, each against a fresh embedded llama-server, decision cache off:

1. fixed: the client as it was before the window: `concurrency` requests in flight (one per
   server slot), each timed by the wall clock from its send, never backing off, never stopping;
2. ours: the product's client (agent.llm_flow.Flow: additive-increase / multiplicative-decrease
   window, slow answers count as congestion, the breaker).

Printed per client: LLM calls, timeouts, other fallbacks, whether the breaker tripped, the wall
time and decisions/s; then ours against fixed. The order alternates with --order.

    .venv/bin/python bench/bench_llm_under_load.py [N] [--hogs 2] [--order fixed,ours]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_llm_embedded import demo_customers, llm_settings, load  # noqa: E402

import agent.llm as agent_llm  # noqa: E402
from agent import local_llm  # noqa: E402
from agent.llm_flow import Flow  # noqa: E402
from core.config import RunConfig, load_settings  # noqa: E402


class FixedFlow(Flow):
    """The client before the window: always `ceiling` requests in flight, no back-off, no breaker."""

    def __init__(self, ceiling: int, *, timeout_s: float, **_: Any) -> None:
        super().__init__(ceiling, timeout_s=timeout_s, start=ceiling)

    async def release(self, failure: str | None, seconds: float) -> None:
        async with self._cond:
            self.in_flight -= 1
            self.outcomes[failure or "answered"] += 1
            self._cond.notify_all()


@contextlib.contextmanager
def hogs(n: int) -> Iterator[None]:
    """n CPU-bound processes for the duration."""
    procs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(n)]
    try:
        time.sleep(2)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def one_client(label: str, flow: type[Flow], ctxs, history, settings, llm) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    agent_llm.Flow = flow  # type: ignore[misc]
    try:
        with local_llm.serve(llm) as url:
            t0 = time.perf_counter()
            decided, stats = settings.decide(ctxs, history, llm, url)
            wall = time.perf_counter() - t0
    finally:
        agent_llm.Flow = Flow  # type: ignore[misc]
    reasons = Counter(d.fallback_reason for d, _ in decided if d.policy == "llm->rules")
    row = {
        "client": label,
        "decisions": len(decided),
        "llm_calls": int(stats.get("llm_calls", 0)),  # completions that came back (a timeout is not one)
        "timeouts": reasons.get("timeout", 0),
        "stopped": reasons.get("llm_stopped", 0),
        "other_fallbacks": sum(v for k, v in reasons.items() if k not in ("timeout", "llm_stopped")),
        "fallback_reasons": dict(reasons),
        "wall_s": wall,
        "per_s": len(decided) / wall,
        "load_after": load(),
    }
    print(
        f"{label:<6} {row['decisions']:>4} decisions  {row['llm_calls']:>4} LLM calls  timeouts "
        f"{row['timeouts']:>4} ({row['timeouts'] / max(row['decisions'], 1):.0%} of decisions)  stopped "
        f"{row['stopped']:>4}  other fallbacks {row['other_fallbacks']:>3}  wall {wall:7.1f} s  "
        f"{row['per_s']:.3f} decisions/s  load {row['load_after']}",
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=96, help="demo customers that need a proposal")
    ap.add_argument("--hogs", type=int, default=2, help="CPU-bound processes beside the run")
    ap.add_argument("--order", default="fixed,ours")
    ap.add_argument("--prompt", default=None, help="prompt version (default: the product's)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    prompt = args.prompt or load_settings(RunConfig).prompt_version
    ctxs, history, settings = demo_customers(args.n, prompt)
    llm = llm_settings(cache=False, http_retries=0)
    local_llm.prepare(llm)
    print(
        f"load before: {load()}   hogs: {args.hogs}   customers: {len(ctxs)}   prompt: {prompt}   "
        f"slots: {llm.slots}   concurrency ceiling: {llm.concurrency}   timeout: {llm.timeout_s:.0f} s"
    )
    flows = {"fixed": FixedFlow, "ours": Flow}
    rows = []
    with hogs(args.hogs):
        for label in args.order.split(","):
            rows.append(one_client(label, flows[label], ctxs, history, settings, llm))
    by = {r["client"]: r for r in rows}
    if {"fixed", "ours"} <= set(by):
        f, o = by["fixed"], by["ours"]
        print(
            f"ours vs fixed: timeouts {o['timeouts']} vs {f['timeouts']} of {o['decisions']} decisions; wall {o['wall_s'] / f['wall_s']:.2f}x; LLM-decided "
            f"{o['decisions'] - sum(o['fallback_reasons'].values())} vs "
            f"{f['decisions'] - sum(f['fallback_reasons'].values())} of {o['decisions']}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

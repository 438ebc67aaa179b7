"""The LLM client on a busy machine: the congestion window against a fixed concurrency, side by side.

Two CPU-bound processes (`yes > /dev/null`, --hogs) load the machine for the whole run. The same
demo customers (the first N by id that need a proposal) are decided in MODE=llm (prompt --prompt,
default the product's) once per client, each against a fresh embedded llama-server, decision cache off:

1. fixed: the client as it was before the window: `concurrency` requests in flight (one per
   server slot), each timed by the wall clock from its send, never backing off, never stopping;
2. ours: the product's client (agent.llm_flow.Flow: additive-increase / multiplicative-decrease
   window, slow answers count as congestion where their time grows with the number in flight, the
   breaker);
3. previous (with --order ...,previous): the window before it read that slope, every slow answer
   halving it.

Printed per client: LLM calls, timeouts, other fallbacks, whether the breaker tripped, the wall
time and decisions/s; then ours against fixed. The order alternates with --order; --json keeps
each request's time, number in flight and the window after it (`trace`).

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
from agent.llm_flow import CONGESTION, Flow, Ticket  # noqa: E402
from core.config import RunConfig, load_settings  # noqa: E402

TRACE: list[dict[str, Any]] = []  # one row per request that came back: when, how long, the window after


class TracedFlow(Flow):
    """The product's window, each release traced."""

    async def release(self, ticket: Ticket, failure: str | None, seconds: float) -> None:
        in_flight = self.in_flight
        await super().release(ticket, failure, seconds)
        TRACE.append({"t": round(time.monotonic() - self.t0, 1), "s": round(seconds, 1), "failure": failure,
                      "in_flight": in_flight, "window": round(self.window, 2), "queue": self.queueing()})  # fmt: skip


class PreviousFlow(TracedFlow):
    """The window before it read the slope (2026-12-07): every answer slower than half the budget
    halved it, whatever the number in flight."""

    async def release(self, ticket: Ticket, failure: str | None, seconds: float) -> None:
        async with self._cond:
            TRACE.append({"t": round(time.monotonic() - self.t0, 1), "s": round(seconds, 1), "failure": failure,
                          "in_flight": self.in_flight, "window": round(self.window, 2)})  # fmt: skip
            self.in_flight -= 1
            self.outcomes[failure or "answered"] += 1
            if failure in CONGESTION or seconds > self.slow_s:
                self.window = max(1.0, self.window / 2)
            else:
                self.window = min(float(self.ceiling), self.window + 1 / self.window)
            self._maybe_trip()
            self._cond.notify_all()


class FixedFlow(Flow):
    """The client before the window: always `ceiling` requests in flight, no back-off, no breaker."""

    def __init__(self, ceiling: int, *, timeout_s: float, **_: Any) -> None:
        super().__init__(ceiling, timeout_s=timeout_s, start=ceiling)

    async def release(self, ticket: Ticket, failure: str | None, seconds: float) -> None:
        async with self._cond:
            TRACE.append({"t": round(time.monotonic() - self.t0, 1), "s": round(seconds, 1), "failure": failure,
                          "in_flight": self.in_flight, "window": self.window})  # fmt: skip
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
    TRACE.clear()
    agent_llm.Flow = flow  # type: ignore[misc]
    try:
        with local_llm.serve(llm) as url:
            t0, cpu0 = time.perf_counter(), time.process_time()
            decided, stats = settings.decide(ctxs, history, llm, url)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
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
        "client_cpu_s": cpu,  # this process's CPU over the client's run (the server's is not in it)
        "per_s": len(decided) / wall,
        "load_after": load(),
        "trace": list(TRACE),
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
    flows = {"fixed": FixedFlow, "ours": TracedFlow, "previous": PreviousFlow}
    rows = []
    with hogs(args.hogs):
        for label in args.order.split(","):
            rows.append(one_client(label, flows[label], ctxs, history, settings, llm))
            if args.json:  # each client's row as soon as it is measured
                args.json.write_text(json.dumps(rows, indent=1) + "\n")
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

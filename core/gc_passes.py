"""Fewer garbage-collector passes while a batch of decisions is made.

A batch allocates many short-lived objects (validated contracts, guardrail checks, request and
response JSON) next to many long-lived ones (the contexts of every customer in the run), and almost
none of them live in reference cycles. At CPython's default gen-0 threshold (700 allocations) the
collector runs every few decisions and each pass walks the young objects the run keeps, so fewer
passes make both the rules pipeline (bench/bench_rules.py) and the LLM client
(bench/bench_llm_overhead.py) cheaper per decision; the figures are in bench/README.md.
The thresholds are restored when the batch ends; nested or overlapping batches keep the raised
thresholds until the last one ends, which restores those found by the first. Nothing is disabled:
cycles are still collected, less often.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

GC_GEN0_THRESHOLD = 100_000
_gc_state: dict[str, Any] = {"depth": 0, "saved": None}


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Raise the collector's thresholds while a batch runs, then restore them."""
    if _gc_state["depth"] == 0:
        saved = gc.get_threshold()
        _gc_state["saved"] = saved
        gc.set_threshold(max(saved[0], GC_GEN0_THRESHOLD), max(saved[1], 50), max(saved[2], 100))
    _gc_state["depth"] += 1
    try:
        yield
    finally:
        _gc_state["depth"] -= 1
        if _gc_state["depth"] == 0:
            gc.set_threshold(*_gc_state["saved"])

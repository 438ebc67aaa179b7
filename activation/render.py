"""Terminal rendering of a run summary (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from activation.summary import RunSummary


def print_summary(s: RunSummary, console: Console | None = None) -> None:
    console = console or Console()
    head = (
        f"run {s.run_id}  mode={s.mode}  segment={s.segment}  goal={s.goal}  dry_run={int(s.dry_run)}  "
        f"cap={s.discount_cap:g}%  suppress={s.suppress_hours:g}h  as_of={s.as_of}"
    )
    console.print(head)
    t = Table(title=f"{s.decisions} decisions by status")
    t.add_column("segment")
    statuses = list(s.counts)
    for st in statuses:
        t.add_column(st, justify="right")
    for seg, counts in sorted(s.by_segment.items()):
        t.add_row(seg, *(str(counts.get(st, 0)) for st in statuses))
    t.add_row("[b]total[/b]", *(f"[b]{s.counts[st]}[/b]" for st in statuses))
    console.print(t)
    if s.reasons:
        r = Table(title="reasons")
        r.add_column("reason")
        r.add_column("decisions", justify="right")
        for reason, n in s.reasons.items():
            r.add_row(reason, str(n))
        console.print(r)
    fb = ", ".join(f"{k}={v}" for k, v in s.fallbacks.items()) or "none"
    console.print(
        f"clamped discounts: {s.clamped}   holdouts: {s.holdouts}   deferred: {s.deferred}   "
        f"LLM fallbacks to rules: {sum(s.fallbacks.values())} ({fb})"
    )
    if s.mode == "llm":
        console.print(
            f"LLM: model={s.model} prompt={s.prompt_version} calls={s.llm_calls} cache_hits={s.cache_hits} "
            f"tokens={s.prompt_tokens}+{s.completion_tokens}"
        )
    if s.destinations:
        d = Table(title="destinations" + (" (dry run: written to outbox)" if s.dry_run else ""))
        d.add_column("destination")
        order = (
            "planned",
            "retried",
            "dry_run",
            "delivered",
            "unchanged",
            "failed",
            "dead_letter",
            "conflict",
            "held",
            "requests",
            "rate_limited",
            "retries",
        )
        keys = [k for k in order if any(v.get(k) for v in s.destinations.values())] or ["planned"]
        for k in keys:
            d.add_column(k, justify="right")
        for name, counts in sorted(s.destinations.items()):
            d.add_row(name, *(str(counts.get(k, 0)) for k in keys))
        console.print(d)
    if s.outbox:
        console.print(f"outbox: {s.outbox}")
    console.print(f"elapsed: {s.elapsed_s:.1f}s")

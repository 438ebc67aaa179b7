"""Progress bars on stderr (rich) for the long steps of a run: deciding (or the LLM's calls), and the
delivery to each destination, one bar each.

The delivery engine reports progress through one callback for all destinations. It plans and sends
one destination after another, and asks that destination (`accepts`, `send_batch`) right before it
reports on it, so a thin wrapper around each destination that remembers which one was asked last
attributes every report to its destination's bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from activation.destinations.base import Destination, ItemResult, OutboundItem
from core.contracts import Decision

Advance = Callable[[int], None]
ProgressFactory = Callable[[str, int], Advance]


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def progress_lines(
    every_s: float = 15.0, out: TextIO | None = None, clock: Callable[[], float] = time.monotonic
) -> ProgressFactory:
    """Progress for a stderr that is not a terminal (a log file, CI): one plain line per step at most
    every `every_s` seconds, with the time left, and a closing line for a step that printed any. A
    step that ends within `every_s` (rules mode decides 361 customers in a second) prints nothing."""

    def factory(label: str, total: int) -> Advance:
        start = last = clock()
        done = 0
        spoke = False
        base: tuple[float, int] | None = None  # the first report: the rate counts from it (a step may
        # start with a jump, such as the customers that need no LLM call)

        def line(now: float) -> None:
            elapsed = now - start
            pct = f" ({100 * done / total:.0f}%)" if total > 0 else ""
            left = ""
            if base is not None and base[1] < done < total and now > base[0]:
                rate = (done - base[1]) / (now - base[0])
                left = f", about {_clock((total - done) / rate)} left"
            print(
                f"{label.strip()}: {done}/{total}{pct}, {_clock(elapsed)} elapsed{left}",
                file=out or sys.stderr,
                flush=True,
            )

        def advance(n: int) -> None:
            nonlocal done, last, spoke, base
            done += n
            now = clock()
            if base is None:
                base = (now, done)
            if now - last >= every_s or (spoke and done >= total):
                line(now)
                last, spoke = now, True

        return advance

    return factory


@contextmanager
def progress_bars(enabled: bool, terminal: bool = True) -> Iterator[ProgressFactory | None]:
    """`factory(label, total) -> advance(n)`, drawing on stderr; plain lines when stderr is not a
    terminal (`progress_lines`); None when disabled."""
    if not enabled:
        yield None
        return
    if not terminal:
        yield progress_lines()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(compact=True),
        console=Console(stderr=True),
        transient=False,
    ) as prog:

        def factory(label: str, total: int) -> Advance:
            task = prog.add_task(label, total=max(total, 0))
            return lambda n: prog.advance(task, n)

        yield factory


class _Watched:
    """A destination that tells `on_use` its name whenever the engine asks it something."""

    def __init__(self, dest: Destination, on_use: Callable[[str], None]) -> None:
        self._dest, self._on_use = dest, on_use
        self.name, self.max_batch, self.rate_limit = dest.name, dest.max_batch, dest.rate_limit
        self.secrets = dest.secrets

    def accepts(self, decision: Decision) -> bool:
        self._on_use(self.name)
        return self._dest.accepts(decision)

    def record_key(self, decision: Decision) -> str:
        return self._dest.record_key(decision)

    def build_payload(self, decision: Decision) -> dict[str, Any]:
        return self._dest.build_payload(decision)

    def send_batch(self, items: list[OutboundItem]) -> list[ItemResult]:
        self._on_use(self.name)
        return self._dest.send_batch(items)

    def close(self) -> None:
        self._dest.close()


def delivery_progress(
    factory: ProgressFactory | None,
    destinations: Sequence[Destination],
    decisions: Sequence[Decision],
    *,
    dry_run: bool,
) -> tuple[list[Destination], Advance | None]:
    """Per-destination bars for a live run (a dry run writes files: nothing to wait for). Returns the
    destinations to hand to the engine and its progress callback."""
    if factory is None or dry_run:
        return list(destinations), None
    sends = [d for d in decisions if d.status == "send"]
    bars = {
        dest.name: factory(f"→ {dest.name}", sum(1 for d in sends if dest.accepts(d)))
        for dest in destinations
    }
    current: list[str] = []

    def use(name: str) -> None:
        current[:] = [name]

    def advance(n: int) -> None:
        if current and current[0] in bars:
            bars[current[0]](n)

    return [_Watched(d, use) for d in destinations], advance  # type: ignore[misc]


@contextmanager
def building_warehouse(enabled: bool) -> Iterator[None]:
    """A spinner on stderr while a missing warehouse is built (dbt build: a minute or two)."""
    from warehouse.build import missing_marts

    if not enabled or not missing_marts():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status("building the warehouse: generating data, dbt build (first run only)"):
        yield

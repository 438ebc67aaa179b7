"""Progress where stderr is not a terminal (a log file, CI): plain lines with the time left, at most one
every 15 s per step, and nothing for a step that ends sooner."""

from __future__ import annotations

import io

from activation.progress import progress_lines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_long_step_prints_a_line_every_15_s_with_the_time_left_and_a_closing_line() -> None:
    out, clock = io.StringIO(), Clock()
    advance = progress_lines(out=out, clock=clock)("deciding (LLM calls)", 360)
    for _ in range(360):  # one decision a second
        clock.now += 1.0
        advance(1)
    lines = out.getvalue().splitlines()
    assert lines[0] == "deciding (LLM calls): 15/360 (4%), 0m15s elapsed, about 5m45s left"
    assert lines[-1] == "deciding (LLM calls): 360/360 (100%), 6m00s elapsed"
    assert len(lines) == 24  # at 15 s, 30 s, ..., 360 s
    assert all(" left" in line for line in lines[:-1])


def test_a_quick_step_prints_nothing() -> None:
    out, clock = io.StringIO(), Clock()
    advance = progress_lines(out=out, clock=clock)("deciding", 361)
    for _ in range(361):
        clock.now += 0.002
        advance(1)
    assert out.getvalue() == ""


def test_the_time_left_counts_from_the_first_report_not_from_an_opening_jump() -> None:
    # 238 of 599 customers need no LLM call and are reported at once; the rest take a second each
    out, clock = io.StringIO(), Clock()
    advance = progress_lines(out=out, clock=clock)("deciding (LLM calls)", 599)
    advance(238)
    for _ in range(361):
        clock.now += 1.0
        advance(1)
    first = out.getvalue().splitlines()[0]
    assert first == "deciding (LLM calls): 253/599 (42%), 0m15s elapsed, about 5m46s left"

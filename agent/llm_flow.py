"""How hard the LLM client pushes the server: a congestion window, and a breaker.

The window is TCP's additive-increase / multiplicative-decrease: it starts small, opens by one
request per window of answers that came back in time, and halves on a sign of congestion: a timeout,
a 429 or 5xx, a refused connection, or an answer that took more than half the request's time budget
(delay-based, so the window closes before requests start to time out). A busy server therefore sees
about as many requests as it can serve at the rate it shows, and a request's time budget is spent on
the server working on it, not in its queue: with a fixed concurrency at the server's slot count, a
loaded machine made most requests wait, time out after the server had spent the compute on them,
and fall back.

The breaker stops asking when the model cannot keep up at all: once `min_answers` requests have
come back and more than `trip_share` of them failed for congestion, every later request falls back
to the rules at once (`llm_stopped`), and the run says why in one line (`Flow.reason`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

CONGESTION = ("timeout", "http_429", "http_500", "http_502", "http_503", "http_504", "connection_error")
STOPPED = "llm_stopped"


class Flow:
    def __init__(
        self,
        ceiling: int,
        *,
        timeout_s: float,
        start: int = 2,
        trip_share: float = 0.2,
        min_answers: int = 10,
    ) -> None:
        self.ceiling = max(1, ceiling)
        self.slow_s = timeout_s / 2  # an answer slower than this is a sign of congestion
        self.window = float(min(self.ceiling, max(1, start)))
        self.trip_share, self.min_answers = trip_share, min_answers
        self.in_flight = 0
        self.outcomes: Counter[str] = Counter()
        self.t0 = time.monotonic()
        self.reason: str | None = None  # set when the breaker trips
        self._cond = asyncio.Condition()

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    async def acquire(self) -> bool:
        """Wait for room in the window; False when the breaker has tripped (do not ask)."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.tripped or self.in_flight < int(self.window))
            if self.tripped:
                return False
            self.in_flight += 1
            return True

    async def release(self, failure: str | None, seconds: float) -> None:
        """One request came back after `seconds`: `failure` is its reason code, None for an answer."""
        async with self._cond:
            self.in_flight -= 1
            self.outcomes[failure or "answered"] += 1
            if failure in CONGESTION or seconds > self.slow_s:
                self.window = max(1.0, self.window / 2)
            else:
                self.window = min(float(self.ceiling), self.window + 1 / self.window)
            self._maybe_trip()
            self._cond.notify_all()

    def _maybe_trip(self) -> None:
        answers = sum(self.outcomes.values())
        congested = sum(self.outcomes[c] for c in CONGESTION)
        if self.tripped or answers < self.min_answers or congested <= self.trip_share * answers:
            return
        rate = self.outcomes["answered"] / max(time.monotonic() - self.t0, 1e-9)
        why = ", ".join(f"{c} {self.outcomes[c]}" for c in CONGESTION if self.outcomes[c])
        self.reason = (
            f"the LLM stopped being asked: {congested} of {answers} requests failed ({why}); the model "
            f"answers {rate:.2f} requests/s here, so the rest fall back to the rules. Use a faster "
            "endpoint (OPENAI_BASE_URL), a longer NBA_LLM__TIMEOUT_S, or fewer customers (SEGMENT=)"
        )

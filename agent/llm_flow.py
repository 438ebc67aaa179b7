"""How hard the LLM client pushes the server: a congestion window, and a breaker.

The window is TCP's additive-increase / multiplicative-decrease: it starts small and halves on a sign
of congestion, at most once per round trip (a request sent before the last cut does not cut again):
a timeout, a 429 or 5xx, a refused connection, or an answer slower than half the request's time
budget while the server queues. A busy server therefore sees about as many requests as it can serve
at the rate it shows, and a request's time budget is spent on the server working on it, not in its
queue: with a fixed concurrency at the server's slot count, a loaded machine made most requests
wait, time out after the server had spent the compute on them, and fall back.

A slow answer is congestion only where the client's own requests make each other slow: the window
keeps each answer's time with the mean number of requests in flight over its life, and reads the
slope. A queue (or a server that shares its compute among the requests it holds) answers in a time
that grows with the number in flight; a server that batches its slots, as llama-server does, answers
in a time that grows far less than the number it holds, and on a machine other work keeps busy
every answer is slow. Shrinking the window there gives up the batching and gains little, so a slow
answer cuts only where the slope explains at least half the answers' time (QUEUE_SHARE), and
opens the window like any other answer elsewhere. The same fit sets how fast it opens: by one
request per answer (doubling per round trip) while no queue shows or the fit puts one more request
in flight under the slow mark, by one per round trip beyond. Until a few
answers have seen different numbers in flight, a slow answer neither cuts nor opens it faster: the
window opens by one per round trip and timeouts cut it.

The breaker stops asking when the model cannot keep up at all: once `min_answers` requests have
come back and more than `trip_share` of them failed for congestion, every later request falls back
to the rules at once (`llm_stopped`), and the run says why in one line (`Flow.reason`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from typing import NamedTuple

CONGESTION = ("timeout", "http_429", "http_500", "http_502", "http_503", "http_504", "connection_error")
STOPPED = "llm_stopped"
# Answers whose time the queue test reads, and the share of an answer's time the number in flight
# must explain (slope x mean in flight / median time) for slowness to count as a queue: 1 when each
# request's time is proportional to the number in flight, about 0 when the server batches them.
QUEUE_SAMPLES = 24
QUEUE_MIN = 6
QUEUE_SHARE, NO_QUEUE_SHARE = 0.5, 0.2


class Ticket(NamedTuple):
    """A request admitted by the window: when it was sent, the running integral of the number in
    flight then (its mean over the request's life is what its time depends on), and the window's
    cut count (a congestion sign from before the last cut does not cut again)."""

    sent: float
    area: float
    cuts: int


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
        self.cuts = 0  # times the window was cut
        # (mean number in flight over the request's life, its seconds) of the last answers
        self.samples: deque[tuple[float, float]] = deque(maxlen=QUEUE_SAMPLES)
        self._area, self._at = 0.0, time.monotonic()  # integral of in_flight dt, up to _at
        self.outcomes: Counter[str] = Counter()
        self.t0 = time.monotonic()
        self.reason: str | None = None  # set when the breaker trips
        self._cond = asyncio.Condition()

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    async def acquire(self) -> Ticket | None:
        """Wait for room in the window; None when the breaker has tripped (do not ask)."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.tripped or self.in_flight < int(self.window))
            if self.tripped:
                return None
            self._advance()
            self.in_flight += 1
            return Ticket(self._at, self._area, self.cuts)

    async def release(self, ticket: Ticket, failure: str | None, seconds: float) -> None:
        """The request of `ticket` came back after `seconds`: `failure` is its reason code, None for
        an answer."""
        async with self._cond:
            self._advance()
            if failure is None and self._at > ticket.sent:
                self.samples.append(((self._area - ticket.area) / (self._at - ticket.sent), seconds))
            self.in_flight -= 1
            self.outcomes[failure or "answered"] += 1
            fit = self.fit()
            if failure in CONGESTION or (seconds > self.slow_s and self._queueing(fit)):
                if ticket.cuts == self.cuts:  # once per round trip
                    self.window = max(1.0, self.window / 2)
                    self.cuts += 1
            else:
                self.window = min(float(self.ceiling), self.window + self._step(fit))
            self._maybe_trip()
            self._cond.notify_all()

    def _advance(self) -> None:
        now = time.monotonic()
        self._area += self.in_flight * (now - self._at)
        self._at = now

    def fit(self) -> tuple[float, float, float] | None:
        """(intercept, slope, share) of the answers' times on their mean number in flight: the
        slope is Theil-Sen's (the median of the pairs' slopes, so one odd answer, such as the first
        on a new connection, does not turn it), share is the part of the median time the slope
        explains at the mean number. None until QUEUE_MIN answers have seen numbers that differ."""
        pts = list(self.samples)
        slopes = sorted(
            (t2 - t1) / (n2 - n1)
            for i, (n1, t1) in enumerate(pts)
            for n2, t2 in pts[i + 1 :]
            if abs(n2 - n1) >= 0.5
        )
        if len(pts) < QUEUE_MIN or len(slopes) < QUEUE_MIN:
            return None
        slope = slopes[len(slopes) // 2]
        intercept = sorted(t - slope * n for n, t in pts)[len(pts) // 2]
        median_t = sorted(t for _, t in pts)[len(pts) // 2]
        return intercept, slope, slope * (sum(n for n, _ in pts) / len(pts)) / max(median_t, 1e-9)

    def queueing(self) -> bool | None:
        """Whether the answers' times grow with the number in flight: True when the slope explains at
        least QUEUE_SHARE of the time, False when less than NO_QUEUE_SHARE, None in between or
        without a fit."""
        return self._queueing(self.fit())

    @staticmethod
    def _queueing(fit: tuple[float, float, float] | None) -> bool | None:
        if fit is None:
            return None
        share = fit[2]
        if share >= QUEUE_SHARE:
            return True
        return False if share < NO_QUEUE_SHARE else None

    def _step(self, fit: tuple[float, float, float] | None) -> float:
        """How far an answer opens the window: one request (doubling per round trip) where no queue
        shows or where the fit puts one more request in flight still under the slow mark; one
        request per round trip otherwise."""
        if fit is not None:
            intercept, slope, share = fit
            if share < NO_QUEUE_SHARE or intercept + slope * (self.window + 1) <= self.slow_s:
                return 1.0
        return 1 / self.window

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

"""A request budget that keeps a destination under its declared limit, and backoff with jitter.

HubSpot's burst limit is "N requests in any 10 s". A classic token bucket (capacity N, refill N/10 s)
can let almost 2N through within one window (a full bucket, then the refill), so it would cause the
429s it exists to avoid. This budget keeps the timestamps of its last N requests (a sliding-window
log) and waits until the oldest is more than `window + safety` old: never more than N in any window,
N per window sustained. `safety` absorbs the gap between our clock at send and the server's at arrival.
The safety margin is max(safety_s, 2% of the window), and each request is counted from when its
response arrived (`settle`), not from when it left. A 429's Retry-After pushes the next allowed send
out (`hold`).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable

from activation.destinations.base import RateLimit


class RateBudget:
    def __init__(
        self,
        limit: RateLimit,
        *,
        safety_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.window_s = limit.window_s + max(safety_s, 0.02 * limit.window_s)
        self._sent: deque[float] = deque()
        self._not_before = 0.0
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def acquire(self) -> float:
        """Block until one more request fits; count it. Returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.window_s:
                    self._sent.popleft()
                wait = self._not_before - now
                if len(self._sent) >= self.limit.max_requests:
                    # never grant while the oldest is still inside the window (float rounding included)
                    wait = max(wait, self._sent[0] + self.window_s - now, 1e-6)
                if wait <= 0:
                    self._sent.append(now)
                    self.waited_s += waited
                    return waited
                self._sleep(wait)
                waited += wait

    def settle(self) -> None:
        """The request counted by the last acquire() has been answered: count it from now instead.

        The server counts a request when it arrives, somewhere between our send and its response.
        Counting from the response means no later request can arrive inside the server's window,
        however long the payload took to build or the request to travel. Moving an entry later only
        ever makes the budget stricter, so this is safe with concurrent senders too."""
        with self._lock:
            if self._sent:
                self._sent[-1] = max(self._sent[-1], self._clock())

    def hold(self, seconds: float) -> None:
        """The destination said 'not before `seconds` from now' (Retry-After)."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)


class Backoff:
    """Exponential backoff with 'equal jitter': half the step fixed, half random."""

    def __init__(self, base_s: float, max_s: float, seed: int | None = None) -> None:
        self.base_s, self.max_s = base_s, max_s
        self._rng = random.Random(seed)

    def delay(self, attempt: int) -> float:
        step = min(self.max_s, self.base_s * (2 ** max(0, attempt - 1)))
        return step / 2 + self._rng.random() * step / 2

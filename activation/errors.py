"""Errors of the activation layer.

One base class; a split between transient errors (retry within the run, with backoff) and terminal
ones (dead-letter the row, or for a whole batch bisect to find the bad row). Every error carries the
destination and, where there is one, the HTTP status and the Retry-After the destination asked for.
Messages never contain secrets: connectors build them from status codes and response bodies only.
"""

from __future__ import annotations

from core.errors import ConfigError, NBAError

__all__ = ["ActivationError", "CircuitBreakerOpen", "ConfigError", "DeliveryError", "TransientError"]


class ActivationError(NBAError):
    """Base of every error raised by the activation layer."""


class DeliveryError(ActivationError):
    def __init__(
        self,
        message: str,
        *,
        destination: str,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.destination = destination
        self.status_code = status_code
        self.retry_after = retry_after
        self.message = message
        super().__init__(f"{destination}: {message}" + (f" (HTTP {status_code})" if status_code else ""))


class TransientError(DeliveryError):
    """Worth retrying: 408, 429, 5xx, connection errors, row-level lock/conflict errors."""


class RateLimitedError(TransientError):
    """429 (or equivalent): wait Retry-After, then retry. Does not consume the retry budget."""


class TerminalError(DeliveryError):
    """Retrying the same request cannot succeed (4xx validation). A row with it is dead-lettered;
    a whole batch with it is bisected to isolate the bad row."""


class DestinationBlockedError(TerminalError):
    """The destination cannot take anything in this run (bad credentials, missing external ID field,
    daily allocation exhausted). Rows are not at fault: they are logged `failed` with this reason
    and retried on the next run, never dead-lettered and never bisected."""


class CircuitBreakerOpen(ActivationError):
    """A live run's send volume deviates too far from recent history; pass force to override."""

    def __init__(self, message: str, *, planned: int, median: float, deviation_pct: float) -> None:
        self.planned = planned
        self.median = median
        self.deviation_pct = deviation_pct
        super().__init__(message)


# Exit codes of `nba-activate` (docs/reliability.md): one meaning each.
EXIT_OK = 0  # every row delivered (or already there); a dry run written
EXIT_FAILED = 1  # the run failed: nothing got through, or an error stopped it (circuit breaker, warehouse)
EXIT_BAD_INPUT = 2  # a flag or NBA_* setting is invalid or missing: one line names it
EXIT_PARTIAL = 3  # some rows delivered, some not: they are retried by the next run or `make replay-dlq`
EXIT_BUSY = 4  # another run holds the warehouse: nothing was done


class DeliveryIncomplete(ActivationError):
    """A live run (or a replay) ended with rows not delivered: its status is `partial` or `failed`
    (written to ops.run_log first). Carries the run summary and the lines that say what failed and
    how to retry."""

    def __init__(self, status: str, *, summary: object, lines: list[str]) -> None:
        self.status = status
        self.summary = summary
        self.lines = lines
        self.exit_code = EXIT_PARTIAL if status == "partial" else EXIT_FAILED
        super().__init__(lines[0] if lines else f"delivery {status}")

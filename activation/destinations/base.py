"""The one shape every destination has.

A destination turns a `send` decision into one request item (`build_payload`, pure and
deterministic: the same dict a dry run writes to the outbox), says what it deduplicates on
(`record_key`), and sends a batch of items as ONE API request (`send_batch`), answering one
ItemResult per item. Whole-request failures are raised as activation.errors (TransientError,
RateLimitedError, TerminalError, DestinationBlockedError); per-row outcomes are ItemResults.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from activation.errors import DeliveryError, RateLimitedError, TerminalError, TransientError
from core.contracts import Decision, stable_hash


class RateLimit(BaseModel):
    """A declared request budget: at most `max_requests` in any `window_s` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_requests: int
    window_s: float

    @property
    def per_second(self) -> float:
        return self.max_requests / self.window_s


class OutboundItem(BaseModel):
    """One row on its way to one destination; carries everything a replay needs (no Decision)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    decision_id: str
    run_id: str
    customer_id: str
    channel: str | None
    as_of: datetime
    destination: str
    record_key: str
    payload: dict[str, Any]
    payload_hash: str
    idempotency_key: str


Outcome = Literal["ok", "transient", "terminal"]


class ItemResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    decision_id: str
    outcome: Outcome
    record_id: str | None = None
    error: str | None = None
    retry_after: float | None = None


@runtime_checkable
class Destination(Protocol):
    name: str
    max_batch: int
    rate_limit: RateLimit

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values the engine scrubs from any error text it stores or logs (read at each use, so a
        token obtained mid-run is scrubbed too)."""
        ...

    def accepts(self, decision: Decision) -> bool: ...

    def record_key(self, decision: Decision) -> str: ...

    def build_payload(self, decision: Decision) -> dict[str, Any]: ...

    def send_batch(self, items: list[OutboundItem]) -> list[ItemResult]: ...

    def close(self) -> None: ...


def payload_hash(payload: dict[str, Any]) -> str:
    return stable_hash(payload, length=32)


def idempotency_key(decision_id: str, destination: str, p_hash: str) -> str:
    return stable_hash([decision_id, destination, p_hash], length=32)


def make_item(dest: Destination, decision: Decision) -> OutboundItem:
    payload = dest.build_payload(decision)
    p_hash = payload_hash(payload)
    return OutboundItem(
        decision_id=decision.decision_id,
        run_id=decision.run_id,
        customer_id=decision.customer_id,
        channel=decision.channel,
        as_of=decision.as_of,
        destination=dest.name,
        record_key=dest.record_key(decision),
        payload=payload,
        payload_hash=p_hash,
        idempotency_key=idempotency_key(decision.decision_id, dest.name, p_hash),
    )


def fmt_num(value: float) -> str:
    """Numbers as CRM property strings: 10.0 -> '10', 12.5 -> '12.5'."""
    return f"{value:g}" if float(value).is_integer() else repr(float(value))


def body_excerpt(body: Any, limit: int = 300) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return text if len(text) <= limit else text[:limit] + "..."


def classify_status(status: int) -> Literal["rate_limited", "transient", "terminal"]:
    if status == 429:
        return "rate_limited"
    if status == 408 or status >= 500 or status == 0:
        return "transient"
    return "terminal"


def error_for_status(
    destination: str, status: int, detail: str, retry_after: str | None, *, rejected: str = "rejected"
) -> DeliveryError:
    """The one mapping from an HTTP status to the engine's error kinds: 429 rate-limited (with its
    Retry-After), 408/5xx/connection transient, anything else terminal."""
    kind = classify_status(status)
    if kind == "rate_limited":
        return RateLimitedError(
            f"rate limited: {detail}",
            destination=destination,
            status_code=status,
            retry_after=parse_retry_after(retry_after),
        )
    if kind == "transient":
        return TransientError(f"server error: {detail}", destination=destination, status_code=status)
    return TerminalError(f"{rejected}: {detail}", destination=destination, status_code=status)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

"""A custom REST webhook through httpx: one decision = one signed `POST` (max_batch 1).

Every `send` decision goes out as JSON. Headers: `Idempotency-Key` = hash(decision id, destination,
payload hash), stable across retries and runs, so a receiver stores a re-sent decision once; and
`X-NBA-Signature: t=<unix ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>`, so a receiver can reject
forged or replayed (stale) requests. The record key is customer + template: a receiver sees one
current action per customer and template.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from activation.destinations.base import (
    ItemResult,
    OutboundItem,
    RateLimit,
    body_excerpt,
    error_for_status,
)
from activation.destinations.webhook.settings import WebhookSettings
from activation.errors import DestinationBlockedError, TransientError
from core.contracts import Decision

SIGNATURE_HEADER = "X-NBA-Signature"


def canonical_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


class WebhookDestination:
    name = "webhook"
    secrets: tuple[str, ...]
    max_batch = 1

    def __init__(self, settings: WebhookSettings, *, timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.rate_limit = RateLimit(max_requests=self.settings.rate_per_s, window_s=1.0)
        self._secret = self.settings.secret.get_secret_value()
        self.secrets = (self._secret,)
        self._http = httpx.Client(timeout=timeout_s)

    def accepts(self, decision: Decision) -> bool:
        return decision.status == "send"

    def record_key(self, decision: Decision) -> str:
        return f"{decision.customer_id}:{decision.template_id}"

    def build_payload(self, decision: Decision) -> dict[str, Any]:
        return {
            "event": "nba.decision",
            "decision_id": decision.decision_id,
            "as_of": decision.as_of.isoformat(),
            "customer_id": decision.customer_id,
            "segment": decision.segment,
            "goal": decision.goal,
            "channel": decision.channel,
            "template_id": decision.template_id,
            "discount_pct": decision.discount_pct,
            "subject": decision.subject,
            "message": decision.message,
            "policy": decision.policy,
            "model": decision.model,
            "prompt_version": decision.prompt_version,
        }

    def send_batch(self, items: list[OutboundItem]) -> list[ItemResult]:
        if len(items) != 1:
            raise ValueError("webhook batches hold exactly one item")
        item = items[0]
        body = canonical_body(item.payload)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": item.idempotency_key,
            SIGNATURE_HEADER: sign(self._secret, body),
        }
        try:
            resp = self._http.post(self.settings.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientError(f"connection error: {type(exc).__name__}", destination=self.name) from None
        if resp.is_success:
            try:
                record_id = str(resp.json().get("id") or item.idempotency_key)
            except ValueError:
                record_id = item.idempotency_key
            return [ItemResult(decision_id=item.decision_id, outcome="ok", record_id=record_id)]
        detail = body_excerpt(resp.text)
        status = resp.status_code
        if status == 401:
            msg = f"signature rejected: check NBA_WEBHOOK__SECRET ({detail})"
            raise DestinationBlockedError(msg, destination=self.name, status_code=status)
        raise error_for_status(self.name, status, detail, resp.headers.get("Retry-After"))

    def close(self) -> None:
        self._http.close()

"""Alerts: a live run (activate, apply, replay-dlq) that ends `partial`, `failed`, blocked by the
circuit breaker or stopped by an error posts one JSON message to `NBA_ALERTS__WEBHOOK_URL`.

Signed like the destination webhook: `X-NBA-Signature: t=<unix ts>,v1=<hex HMAC-SHA256(secret,
"<ts>.<body>")>` with `NBA_ALERTS__SECRET`, so the receiver can reject forged or replayed posts;
`Idempotency-Key` is stable per (run, status), so a receiver that sees the post twice stores it once.
An alert that cannot be posted never changes the run's outcome or exit code: the run says so in its
output instead. The URL's path and query (a chat webhook's token often lives there) are never
printed: the output names the scheme, host and port only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from activation.destinations.webhook.connector import SIGNATURE_HEADER, canonical_body, sign
from activation.settings import AlertSettings
from core.contracts import stable_hash

ALERT_STATUSES = ("partial", "failed", "blocked_by_circuit_breaker", "error")


def where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def alert_body(
    *, run_id: str, status: str, command: str, summary: dict[str, Any], lines: list[str]
) -> dict[str, Any]:
    keys = ("mode", "segment", "goal", "as_of", "counts", "destinations", "applied_plan", "policy_identity")
    return {
        "event": "nba.run.alert",
        "run_id": run_id,
        "status": status,
        "command": command,
        "at": datetime.now(UTC).isoformat(),
        "report": lines,
        **{k: summary[k] for k in keys if k in summary},
    }


def post_alert(settings: AlertSettings, body: dict[str, Any]) -> str:
    """Post the alert; returns the line the run prints (posted, or why not)."""
    if not settings.webhook_url or settings.secret is None:
        return (
            f"run {body['status']}: no alert sent (set NBA_ALERTS__WEBHOOK_URL and NBA_ALERTS__SECRET "
            "to be alerted)"
        )
    payload = canonical_body(body)
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": stable_hash([body["run_id"], body["status"], "alert"], length=32),
        SIGNATURE_HEADER: sign(settings.secret.get_secret_value(), payload),
    }
    target = where(settings.webhook_url)
    try:
        resp = httpx.post(settings.webhook_url, content=payload, headers=headers, timeout=settings.timeout_s)
    except httpx.HTTPError as exc:
        return f"alert NOT posted to {target}: {type(exc).__name__} (the run's status is in ops.run_log)"
    if not resp.is_success:
        return f"alert NOT posted to {target}: HTTP {resp.status_code} (the run's status is in ops.run_log)"
    return f"alert posted to {target} (run {body['run_id']} {body['status']})"

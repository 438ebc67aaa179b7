"""Failure alerts from Airflow to a webhook, signed like the destination webhook.

    NBA_ALERTS__WEBHOOK_URL     where to POST (unset: no alert is sent)
    NBA_ALERTS__SECRET  HMAC key (required when the URL is set)

Each alert is one JSON POST with `X-NBA-Signature: t=<unix ts>,v1=<hex HMAC-SHA256(secret,
"<ts>.<body>")>` and an `Idempotency-Key` (dag, run, task, try), the same contract as
activation/destinations/webhook, so one receiver verifies both (tests/production/test_alerts.py
holds the two signatures equal).

This module runs inside Airflow's own interpreter (the task's on_failure_callback), so it uses the
standard library only and reads its two variables itself: the project's settings model lives in the
project's virtualenv, which may be the very thing that failed. A callback never raises: an alert
that cannot be delivered is one log line, and the task's own failure stays what Airflow reports.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any

URL_VAR, SECRET_VAR = "NBA_ALERTS__WEBHOOK_URL", "NBA_ALERTS__SECRET"
SIGNATURE_HEADER = "X-NBA-Signature"
MAX_ERROR_CHARS = 1000
log = logging.getLogger(__name__)


class AlertConfigError(ValueError):
    """The alert variables are inconsistent (a URL without a secret, a URL that is not http(s))."""


def alert_target(environ: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(url, secret) when alerts are configured, None when they are not; AlertConfigError if half-set."""
    env = os.environ if environ is None else environ
    url, secret = env.get(URL_VAR, "").strip(), env.get(SECRET_VAR, "")
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise AlertConfigError(f"{URL_VAR}: must be an http(s) URL")
    if not secret:
        raise AlertConfigError(f"{SECRET_VAR}: is required when {URL_VAR} is set (alerts are signed)")
    return url, secret


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """`t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>`: activation's webhook signature."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def canonical_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def alert_payload(context: dict[str, Any]) -> dict[str, Any]:
    """What a receiver needs to act: which task of which run failed, how, and where to look."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    error = f"{type(exc).__name__}: {exc}" if exc is not None else ""
    logical: Any = context.get("logical_date")
    return {
        "event": "nba.alert",
        "state": "failed",
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None),
        "run_id": getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        "task_id": getattr(ti, "task_id", None),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": logical.isoformat()
        if logical is not None and hasattr(logical, "isoformat")
        else logical,
        "error": error[:MAX_ERROR_CHARS],
        "log_url": getattr(ti, "log_url", None),
    }


def post_alert(
    url: str, secret: str, payload: dict[str, Any], *, timeout_s: float = 10.0, attempts: int = 2
) -> int:
    """POST one signed alert; return the HTTP status. Retries once on a connection error or a 5xx."""
    body = canonical_body(payload)
    key = hashlib.sha256(
        "|".join(str(payload.get(k)) for k in ("dag_id", "run_id", "task_id", "try_number")).encode()
    ).hexdigest()[:32]
    status, last_error = 0, ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                SIGNATURE_HEADER: sign(secret, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310 (http(s) checked)
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            status, last_error = exc.code, f"HTTP {exc.code}"
            if exc.code < 500:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last_error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt < attempts:
            time.sleep(1.0)
    raise ConnectionError(f"alert webhook: {last_error or f'HTTP {status}'}")


def on_failure_alert(context: dict[str, Any]) -> None:
    """Airflow on_failure_callback: post the failure to the alert webhook when one is configured."""
    try:
        target = alert_target()
        if target is None:
            return
        payload = alert_payload(context)
        status = post_alert(*target, payload)
        log.info("alert for %s posted (HTTP %s)", payload.get("task_id"), status)
    except Exception as exc:  # a callback must never mask the task's own failure
        log.error("alert not delivered: %s", exc)

"""Failure alerts (orchestration/alerts.py): signed exactly like the destination webhook, verified by
the same receiver code, over real HTTP on 127.0.0.1; configuration mistakes named in one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from activation.destinations.webhook import sign as webhook_sign
from activation.destinations.webhook.connector import canonical_body as webhook_body
from orchestration import alerts
from testing.local_servers.alerts import AlertReceiver

SECRET = "alert-test-secret"


def _context(exc: Exception | None = None) -> dict:
    ti = SimpleNamespace(
        dag_id="nba_daily", run_id="manual__1", task_id="activate", try_number=2, log_url="http://x/log"
    )
    return {"ti": ti, "exception": exc, "logical_date": datetime(2026, 11, 27, 14, tzinfo=UTC)}


def test_signature_is_the_destination_webhooks() -> None:
    payload = {"b": 1, "a": "é", "n": None}
    assert alerts.canonical_body(payload) == webhook_body(payload)
    for ts in (0, 1_700_000_000, 2_000_000_000):
        assert alerts.sign(SECRET, b'{"x":1}', ts) == webhook_sign(SECRET, b'{"x":1}', ts)


def test_alert_target_reads_the_two_variables() -> None:
    assert alerts.alert_target({}) is None
    url = "http://127.0.0.1:9/alerts"
    assert alerts.alert_target({alerts.URL_VAR: url, alerts.SECRET_VAR: "s"}) == (url, "s")
    with pytest.raises(alerts.AlertConfigError, match="NBA_ALERTS__SECRET: is required"):
        alerts.alert_target({alerts.URL_VAR: url})
    with pytest.raises(alerts.AlertConfigError, match="NBA_ALERTS__WEBHOOK_URL: must be an http"):
        alerts.alert_target({alerts.URL_VAR: "ftp://x", alerts.SECRET_VAR: "s"})


def test_callback_posts_a_verified_alert(monkeypatch: pytest.MonkeyPatch) -> None:
    with AlertReceiver(secret=SECRET) as receiver:
        monkeypatch.setenv(alerts.URL_VAR, receiver.alert_url)
        monkeypatch.setenv(alerts.SECRET_VAR, SECRET)
        alerts.on_failure_alert(_context(RuntimeError("activate exited 2 (bad input)")))
        alerts.on_failure_alert(_context(RuntimeError("again")))  # same task try: same key
    assert receiver.rejected == []
    assert len(receiver.alerts) == 2 and receiver.keys[0] == receiver.keys[1]
    alert = receiver.alerts[0]
    assert alert["event"] == "nba.alert" and alert["task_id"] == "activate" and alert["try_number"] == 2
    assert alert["error"] == "RuntimeError: activate exited 2 (bad input)"
    assert alert["logical_date"] == "2026-11-27T14:00:00+00:00"
    assert SECRET not in json.dumps(receiver.alerts)


def test_a_wrong_secret_is_rejected_and_the_callback_does_not_raise(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with AlertReceiver(secret=SECRET) as receiver:
        monkeypatch.setenv(alerts.URL_VAR, receiver.alert_url)
        monkeypatch.setenv(alerts.SECRET_VAR, "not-the-secret")
        alerts.on_failure_alert(_context(ValueError("boom")))  # must not raise
    assert receiver.alerts == [] and receiver.rejected == ["bad signature"]
    assert "alert not delivered: alert webhook: HTTP 401" in caplog.text


def test_unreachable_webhook_is_one_log_line(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    with AlertReceiver(secret=SECRET) as receiver:
        url = receiver.alert_url
    monkeypatch.setenv(alerts.URL_VAR, url)  # the server is stopped: connection refused
    monkeypatch.setenv(alerts.SECRET_VAR, SECRET)
    monkeypatch.setattr(alerts.time, "sleep", lambda _s: None)
    alerts.on_failure_alert(_context(ValueError("boom")))
    assert "alert not delivered: alert webhook: URLError" in caplog.text


def test_no_alert_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(alerts.URL_VAR, raising=False)
    posted: list = []
    monkeypatch.setattr(alerts, "post_alert", lambda *a, **k: posted.append(a))
    alerts.on_failure_alert(_context(ValueError("boom")))
    assert posted == []

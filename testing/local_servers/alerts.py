"""A local alert receiver on 127.0.0.1: `POST /alerts`, checked with the destination webhook server's
own signature verification (testing.local_servers.webhook: HMAC-SHA256 over "<ts>.<body>", fresh
timestamp), keeping every verified alert and its Idempotency-Key. The run's alerts
(activation/alerts.py) and Airflow's failure callback (orchestration/alerts.py) post here in tests."""

from __future__ import annotations

from typing import Any

from testing.local_servers.common import Request, Response
from testing.local_servers.webhook import WebhookServer

ALERT_PATH = "/alerts"


class AlertReceiver(WebhookServer):
    name = "alerts"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alerts: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.rejected: list[str] = []

    @property
    def alert_url(self) -> str:
        return self.url + ALERT_PATH

    def route(self, req: Request) -> Response:
        if req.method != "POST" or req.path != ALERT_PATH:
            return Response(404, {"error": "not found"})
        problem = self.verify(req.headers.get("x-nba-signature"), req.body)
        if problem:
            self.rejected.append(problem)
            return Response(401, {"error": problem})
        key = req.headers.get("idempotency-key")
        if not key:
            self.rejected.append("no Idempotency-Key")
            return Response(400, {"error": "Idempotency-Key header required"})
        with self.lock:
            self.alerts.append(req.json())
            self.keys.append(key)
        return Response(200, {"stored": True})

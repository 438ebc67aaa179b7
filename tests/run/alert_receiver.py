"""A local alert receiver for the run tests: `POST /alerts` on 127.0.0.1, verifying the signature the
way a real receiver would (HMAC-SHA256 over "<ts>.<body>", fresh timestamp), storing what it got."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from testing.local_servers.common import LocalServer, Request, Response

ALERT_PATH = "/alerts"


class AlertReceiver(LocalServer):
    name = "alerts"

    def __init__(
        self, *, secret: str = "local-alert-secret", tolerance_s: float = 300.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.secret, self.tolerance_s = secret, tolerance_s
        self.alerts: list[dict[str, Any]] = []
        self.rejected: list[str] = []

    def verify(self, header: str | None, body: bytes) -> str | None:
        if not header:
            return "missing signature"
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            ts, given = int(parts["t"]), parts["v1"]
        except (KeyError, ValueError):
            return "malformed signature"
        if abs(time.time() - ts) > self.tolerance_s:
            return "stale timestamp"
        expected = hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, given) else "bad signature"

    def route(self, req: Request) -> Response:
        if req.method != "POST" or req.path != ALERT_PATH:
            return Response(404, {"error": "not found"})
        problem = self.verify(req.headers.get("x-nba-signature"), req.body)
        if problem:
            self.rejected.append(problem)
            return Response(401, {"error": problem})
        body = req.json()
        body["_idempotency_key"] = req.headers.get("idempotency-key")
        self.alerts.append(body)
        return Response(200, {"ok": True})

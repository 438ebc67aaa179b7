"""A local webhook receiver: `POST /hooks/nba`.

Checks `X-NBA-Signature: t=<ts>,v1=<hex>` (HMAC-SHA256 over `<ts>.<body>`) and rejects stale
timestamps (older or newer than `tolerance_s`) with 401; requires an `Idempotency-Key`; a replayed key
gets the first response back (header `Idempotent-Replayed: true`) and stores nothing. A payload whose
`discount_pct` is outside 0..100 is rejected with 422.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from testing.local_servers.common import LocalServer, Request, Response

HOOK_PATH = "/hooks/nba"


class WebhookServer(LocalServer):
    name = "webhook"

    def __init__(
        self, *, secret: str = "local-webhook-secret", tolerance_s: float = 300.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.secret = secret
        self.tolerance_s = tolerance_s
        self.events: dict[str, dict[str, Any]] = {}  # idempotency key -> stored payload
        self.responses: dict[str, Response] = {}  # idempotency key -> first successful response
        self.counters.update(replays=0, bad_signatures=0)

    def authorised(self, req: Request) -> bool:
        return True  # the signature is checked in route, where its failures are told apart

    def unique_records(self) -> int:
        return len(self.events)

    def extra_stats(self) -> dict[str, Any]:
        return {"unique_decisions": len({e.get("decision_id") for e in self.events.values()})}

    def verify(self, header: str | None, body: bytes) -> str | None:
        """None if the signature is valid and fresh, else the reason."""
        if not header:
            return "missing signature"
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            ts = int(parts["t"])
            given = parts["v1"]
        except (KeyError, ValueError):
            return "malformed signature"
        if abs(time.time() - ts) > self.tolerance_s:
            return "stale timestamp"
        expected = hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, given) else "bad signature"

    def route(self, req: Request) -> Response:
        if req.method != "POST" or req.path != HOOK_PATH:
            return Response(404, {"error": "not found"})
        problem = self.verify(req.headers.get("x-nba-signature"), req.body)
        if problem:
            self.counters["bad_signatures"] += 1
            return Response(401, {"error": problem})
        key = req.headers.get("idempotency-key")
        if not key:
            return Response(400, {"error": "Idempotency-Key header required"})
        if key in self.responses:
            self.counters["replays"] += 1
            first = self.responses[key]
            return Response(first.status, first.body, {**first.headers, "Idempotent-Replayed": "true"})
        try:
            payload = req.json()
            assert isinstance(payload, dict) and payload.get("decision_id")
        except Exception:
            return Response(400, {"error": "body must be a JSON object with decision_id"})
        pct = payload.get("discount_pct", 0)
        if not isinstance(pct, int | float) or not 0 <= pct <= 100:
            return Response(422, {"error": f"discount_pct {pct!r} outside 0..100"})
        self.events[key] = payload
        self.counters["total_writes"] += 1
        self.note_decision(payload.get("decision_id"), payload.get("customer_id"), payload)
        resp = Response(200, {"id": f"evt_{len(self.events):08d}", "stored": True})
        self.responses[key] = resp
        return resp

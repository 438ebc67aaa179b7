"""A local HubSpot CRM v3 (contacts batch upsert) with HubSpot's limits and error shapes.

- `POST /crm/v3/objects/contacts/batch/upsert`: at most 100 inputs (else 400); `idProperty` must be
  a declared unique property (`email`, `nba_customer_id`); duplicate ids in one batch -> 400; an
  unknown property or an invalid `nba_discount_pct` (not a number in 0..100) -> 400 for the whole
  batch (so a client must bisect); `nba_message` over 5,000 chars -> a per-input VALIDATION_ERROR;
  injected partial failures -> per-input CONFLICT. Any per-input error turns the answer into 207
  with `errors[]` and `numErrors`. `objectWriteTraceId` is echoed in results and in error context;
  results come back shuffled (HubSpot does not promise order).
- Email enrolment: a simulated workflow enrols a contact when `nba_channel` is `email` and
  `nba_decision_id` changes (a property-change trigger); `enrollments` counts (contact, decision).
- Bearer auth; rate-limit headers on every response; the declared burst limit answers 429 with
  `Retry-After` and `policyName: TEN_SECONDLY_ROLLING`.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from testing.local_servers.common import LocalServer, Request, Response, _retry_after

UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
MAX_INPUTS = 100
UNIQUE_PROPERTIES = ("email", "nba_customer_id")
PROPERTIES = frozenset(
    {
        "email", "firstname", "lastname", "nba_customer_id", "nba_decision_id", "nba_decided_at", "nba_segment",
        "nba_goal", "nba_channel", "nba_template_id", "nba_discount_pct", "nba_subject", "nba_message",
        "nba_policy",
    }
)  # fmt: skip
MAX_MESSAGE_CHARS = 5000


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class HubSpotServer(LocalServer):
    name = "hubspot"

    def __init__(
        self, *, token: str = "local-hubspot-token", max_discount_pct: float = 100.0, **kwargs: Any
    ) -> None:
        kwargs.setdefault("rate_limit", 100)
        kwargs.setdefault("rate_window_s", 10.0)
        super().__init__(**kwargs)
        self.token = token
        self.max_discount_pct = max_discount_pct  # the portal's validation rule on nba_discount_pct
        self.contacts: dict[str, dict[str, Any]] = {}  # by nba_customer_id / email value
        self.enrollments: set[tuple[str, str]] = set()
        self._next_id = 1000

    # --- vendor shapes ---------------------------------------------------------------------------

    def authorised(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorised(self) -> Response:
        return Response(401, _error("Authentication credentials not found.", "INVALID_AUTHENTICATION"))

    def too_many(self, retry_after: float, declared: bool) -> Response:
        body = {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "policyName": "TEN_SECONDLY_ROLLING",
        }
        return Response(429, body, {"Retry-After": _retry_after(retry_after, exact=not declared)})

    def server_error(self, status: int) -> Response:
        return Response(status, _error("internal error (injected)", "INTERNAL_ERROR"))

    def decorate(self, resp: Response, now: float) -> None:
        k = self.knobs
        win = self.window()
        limit = k.rate_limit or 0
        remaining = win.remaining(now) if win else limit
        secondly = math.ceil(limit / k.rate_window_s) if limit else 0
        resp.headers.update(
            {
                "X-HubSpot-RateLimit-Max": str(limit),
                "X-HubSpot-RateLimit-Remaining": str(remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(k.rate_window_s * 1000)),
                "X-HubSpot-RateLimit-Secondly": str(secondly),
                "X-HubSpot-RateLimit-Secondly-Remaining": str(min(secondly, remaining)),
                "X-HubSpot-RateLimit-Daily": str(k.daily_limit),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, k.daily_limit - self.counters["requests"])),
            }
        )

    def unique_records(self) -> int:
        return len(self.contacts)

    def extra_stats(self) -> dict[str, Any]:
        return {"enrollments": len(self.enrollments)}

    # --- the API ---------------------------------------------------------------------------------

    def route(self, req: Request) -> Response:
        if req.method == "POST" and req.path == UPSERT_PATH:
            return self._upsert(req)
        return Response(404, _error(f"Unable to route {req.method} {req.path}", "OBJECT_NOT_FOUND"))

    def _upsert(self, req: Request) -> Response:
        started = _now()
        try:
            inputs = req.json()["inputs"]
            assert isinstance(inputs, list)
        except Exception:
            return Response(400, _error('Invalid input JSON: expected {"inputs": [...]}', "VALIDATION_ERROR"))
        if len(inputs) > MAX_INPUTS:
            return Response(
                400, _error(f"Batch input limit exceeded: {len(inputs)} > {MAX_INPUTS}", "VALIDATION_ERROR")
            )
        ids: set[str] = set()
        for item in inputs:
            problem = self._validate(item, ids)
            if problem:
                return Response(400, _error(problem, "VALIDATION_ERROR"))
        results, errors = [], []
        for item in inputs:
            trace = item.get("objectWriteTraceId")
            props = {k: str(v) for k, v in item["properties"].items()}
            if len(props.get("nba_message", "")) > MAX_MESSAGE_CHARS:
                errors.append(
                    _row_error(item, "VALIDATION_ERROR", f"nba_message exceeds {MAX_MESSAGE_CHARS} chars")
                )
                continue
            if self.knobs.partial_failure_rate and self.rng.random() < self.knobs.partial_failure_rate:
                errors.append(_row_error(item, "CONFLICT", "contact is being updated by another request"))
                continue
            results.append(self._write(item, props, trace))
        self.rng.shuffle(results)
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _now(),
        }
        if errors:
            body.update(errors=errors, numErrors=len(errors))
            return Response(207, body)
        return Response(200, body)

    def _validate(self, item: dict[str, Any], ids: set[str]) -> str | None:
        id_prop, value, props = item.get("idProperty"), item.get("id"), item.get("properties")
        if id_prop not in UNIQUE_PROPERTIES:
            return f"Property {id_prop!r} is not a unique property of contacts; use one of {list(UNIQUE_PROPERTIES)}"
        if not isinstance(value, str) or not value or not isinstance(props, dict):
            return "Each input needs a non-empty string id and a properties object"
        if value in ids:
            return f"Duplicate IDs found in batch input: {value}"
        ids.add(value)
        unknown = sorted(set(props) - PROPERTIES)
        if unknown:
            return f"Property values were not valid: properties {unknown} do not exist"
        raw: Any = props.get("nba_discount_pct")
        if raw not in (None, ""):
            try:
                pct = float(raw)
            except (TypeError, ValueError):
                pct = math.nan
            if not 0 <= pct <= self.max_discount_pct:
                limit = f"0..{self.max_discount_pct:g}"
                return f"Property values were not valid: nba_discount_pct={raw!r} for id {value} (must be {limit})"
        return None

    def _write(self, item: dict[str, Any], props: dict[str, str], trace: str | None) -> dict[str, Any]:
        key, now = item["id"], _now()
        existing = self.contacts.get(key)
        created = existing is None
        if existing is None:
            self._next_id += 1
            existing = {"id": str(self._next_id), "createdAt": now, "properties": {item["idProperty"]: key}}
            self.contacts[key] = existing
        before = dict(existing["properties"])
        existing["properties"].update(props)
        existing["updatedAt"] = now
        self.counters["total_writes"] += 1
        decision = props.get("nba_decision_id")
        self.note_decision(decision, key, props)
        if props.get("nba_channel") == "email" and decision and decision != before.get("nba_decision_id"):
            self.enrollments.add((existing["id"], decision))
        result = {
            "id": existing["id"],
            "new": created,
            "properties": existing["properties"],
            "createdAt": existing["createdAt"],
            "updatedAt": now,
            "archived": False,
        }
        if trace:
            result["objectWriteTraceId"] = trace
        return result


def _error(message: str, category: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "category": category, "correlationId": str(uuid.uuid4())}


def _row_error(item: dict[str, Any], category: str, message: str) -> dict[str, Any]:
    context: dict[str, list[str]] = {"id": [str(item.get("id"))]}
    if item.get("objectWriteTraceId"):
        context["objectWriteTraceId"] = [item["objectWriteTraceId"]]
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "links": {},
        "errors": [],
    }

"""HubSpot CRM v3 through hubspot-api-client: one batch = one `POST /crm/v3/objects/contacts/batch/upsert`.

Routing: every `send` decision becomes a contact upsert keyed by the unique property
`nba_customer_id` (HubSpot's idempotency mechanism: a re-sent input updates, never duplicates),
setting the nba_* properties. Email enrolment is not a separate call: the HubSpot workflow that
sends the email enrols a contact when `nba_decision_id` changes and `nba_channel` is `email`
(a property-change enrolment trigger). So a batch stays one idempotent request, and a re-sent
decision (same nba_decision_id) enrols nobody twice. The local server simulates that trigger.

Each input carries `objectWriteTraceId` = decision id; results and 207 errors are mapped back by it,
never by position.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3
from hubspot import Client
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.contacts.exceptions import ApiException
from urllib3.util.retry import Retry

from activation.destinations.base import (
    ItemResult,
    OutboundItem,
    Outcome,
    RateLimit,
    body_excerpt,
    error_for_status,
    fmt_num,
)
from activation.destinations.hubspot.settings import HubSpotSettings
from activation.errors import DestinationBlockedError, TransientError
from core.contracts import Decision

# 207 error categories that a retry of the same input can cure; anything else is the row's fault.
TRANSIENT_CATEGORIES = {
    "CONFLICT",
    "RATE_LIMITS",
    "INTERNAL_ERROR",
    "SERVICE_UNAVAILABLE",
    "TIMEOUT",
    "LOCKED",
}


class HubSpotDestination:
    name = "hubspot"
    secrets: tuple[str, ...]

    def __init__(self, settings: HubSpotSettings, *, timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.max_batch = self.settings.max_batch
        self.rate_limit = RateLimit(
            max_requests=self.settings.rate_per_10s, window_s=self.settings.rate_window_s
        )
        token = self.settings.token.get_secret_value()
        self.secrets = (token,)
        self._timeout = timeout_s
        # No client-side retries: the delivery engine owns retries, backoff and the rate budget.
        no_retry = Retry(total=0, connect=0, read=0, status=0, redirect=0, raise_on_status=False)
        self._client = Client.create(
            access_token=token, host=self.settings.base_url.rstrip("/"), retry=no_retry
        )
        self._batch_api = self._client.crm.contacts.batch_api

    # --- pure part -------------------------------------------------------------------------------

    def accepts(self, decision: Decision) -> bool:
        return decision.status == "send"

    def record_key(self, decision: Decision) -> str:
        return decision.customer_id

    def build_payload(self, decision: Decision) -> dict[str, Any]:
        """One batch-upsert input. Property values are strings, as HubSpot stores them. The run id is
        left out on purpose: re-running the same decision must hash the same (diff -> unchanged)."""
        props = {
            self.settings.id_property: decision.customer_id,
            "nba_decision_id": decision.decision_id,
            "nba_decided_at": decision.as_of.isoformat(),
            "nba_segment": decision.segment,
            "nba_goal": decision.goal,
            "nba_channel": decision.channel or "",
            "nba_template_id": decision.template_id or "",
            "nba_discount_pct": fmt_num(decision.discount_pct),
            "nba_subject": decision.subject or "",
            "nba_message": decision.message or "",
            "nba_policy": decision.policy,
        }
        return {
            "id": decision.customer_id,
            "idProperty": self.settings.id_property,
            "objectWriteTraceId": decision.decision_id,
            "properties": props,
        }

    # --- the one request per batch ---------------------------------------------------------------

    def send_batch(self, items: list[OutboundItem]) -> list[ItemResult]:
        inputs = [
            SimplePublicObjectBatchInputUpsert(
                id=it.payload["id"],
                id_property=it.payload["idProperty"],
                object_write_trace_id=it.payload["objectWriteTraceId"],
                properties=it.payload["properties"],
            )
            for it in items
        ]
        body = BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs)
        try:
            # _preload_content=False: the client still builds, authenticates and sends the request and
            # raises ApiException on non-2xx, but we parse the JSON ourselves. Its model deserializer
            # parses every createdAt/updatedAt with dateutil, slow enough on a 100-row answer that it alone
            # would cap sending below HubSpot's 10 req/s.
            raw = self._batch_api.upsert_with_http_info(
                body, _request_timeout=self._timeout, _preload_content=False
            )
            try:
                data = json.loads(raw.data or b"{}")
            finally:
                raw.release_conn()
        except ApiException as exc:
            raise self._map_exception(exc) from None
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError(f"connection error: {type(exc).__name__}", destination=self.name) from None
        except ValueError:
            raise TransientError("unparseable response body", destination=self.name) from None

        by_trace: dict[str, ItemResult] = {}
        for res in data.get("results") or []:
            trace = res.get("objectWriteTraceId")
            if trace:
                by_trace[trace] = ItemResult(decision_id=trace, outcome="ok", record_id=str(res.get("id")))
        for err in data.get("errors") or []:
            traces = (err.get("context") or {}).get("objectWriteTraceId") or []
            category = str(err.get("category") or "").upper()
            outcome: Outcome = "transient" if category in TRANSIENT_CATEGORIES else "terminal"
            for trace in traces:
                by_trace[trace] = ItemResult(
                    decision_id=trace, outcome=outcome, error=f"{category}: {err.get('message')}"
                )
        return [
            by_trace.get(it.decision_id)
            or ItemResult(
                decision_id=it.decision_id, outcome="transient", error="no result returned for input"
            )
            for it in items
        ]

    def _map_exception(self, exc: ApiException) -> Exception:
        status = int(exc.status or 0)
        headers = exc.headers or {}
        detail = body_excerpt(exc.body or exc.reason or "")
        if status in (401, 403):
            return DestinationBlockedError(
                f"not authorised: check NBA_HUBSPOT__TOKEN ({detail})",
                destination=self.name,
                status_code=status,
            )
        return error_for_status(
            self.name, status, detail, headers.get("Retry-After"), rejected="batch rejected"
        )

    def close(self) -> None:
        pass

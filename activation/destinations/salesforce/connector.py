"""Salesforce REST through simple-salesforce.

Routing: every `send` decision upserts its Contact by the external ID `NBA_Customer_Id__c` with
sObject Collections (`PATCH composite/sobjects/Contact/NBA_Customer_Id__c`, allOrNone false, at most
200 records, results in request order). Customer-success templates of the churn_rescue_nps segment
(`cs_followup`, `cs_followup_offer`) also get a follow-up Task whose WhoId is the upserted Contact's
Id. Tasks are upserted too, by the external ID `NBA_Decision_Id__c` on Task
(`PATCH composite/sobjects/Task/NBA_Decision_Id__c`), so a re-sent decision never creates a second
Task. A batch is therefore one request, or two when it holds customer-success decisions.

Before the first send, a describe call checks that each external ID field exists and is flagged
External ID; if not, the whole destination fails once with Salesforce's own message instead of
every row failing. The Contact payload assumes the contacts exist (reverse ETL updates CRM records);
an org that requires LastName on create would reject new ones per row, which ends in the DLQ.
"""

from __future__ import annotations

from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from activation.destinations.base import (
    ItemResult,
    OutboundItem,
    Outcome,
    RateLimit,
    body_excerpt,
    error_for_status,
)
from activation.destinations.salesforce.oauth import OAuthLogin
from activation.destinations.salesforce.settings import SalesforceSettings
from activation.errors import DestinationBlockedError, TerminalError, TransientError
from core.contracts import Decision

TASK_TEMPLATES = frozenset({"cs_followup", "cs_followup_offer"})
TRANSIENT_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG", "QUERY_TIMEOUT"}
EXTERNAL_ID_MISSING = "Provided external ID field does not exist or is not accessible"


class SalesforceDestination:
    name = "salesforce"

    def __init__(self, settings: SalesforceSettings, *, timeout_s: float = 30.0) -> None:
        self.settings = s = settings
        self.max_batch = s.max_batch
        self.rate_limit = RateLimit(max_requests=s.rate_per_s, window_s=1.0)
        self._timeout = timeout_s
        self._last_response: requests.Response | None = None
        self._session = requests.Session()
        self._session.hooks["response"].append(self._remember)
        self._oauth = OAuthLogin(s, self._session, timeout_s) if s.auth != "session" else None
        self._sf: Salesforce | None = None
        if self._oauth is None:  # a session id: no sign-in request
            self._sf = self._client(
                str(s.instance_url), s.session_id.get_secret_value() if s.session_id else ""
            )
        self._checked: set[str] = set()

    @property
    def secrets(self) -> tuple[str, ...]:
        """What no log line, outbox file or report may hold: the session id or the OAuth secrets and
        the access token they got."""
        s = self.settings
        given = (s.session_id, s.consumer_secret, s.private_key)
        own = tuple(v.get_secret_value() for v in given if v is not None)
        return own + (self._oauth.secrets() if self._oauth else ())

    def _client(self, instance_url: str, session_id: str) -> Salesforce:
        s = self.settings
        return Salesforce(
            instance_url=s.instance_url or instance_url,
            session_id=session_id,
            version=s.api_version,
            session=self._session,
        )

    def _signed_in(self, *, again: bool = False) -> Salesforce:
        """The client; with OAuth, signed in on first use (and once more when a token expires)."""
        if self._oauth is not None and (self._sf is None or again):
            token, instance_url = self._oauth.token()
            self._sf = self._client(instance_url, token)
        assert self._sf is not None
        return self._sf

    # --- pure part -------------------------------------------------------------------------------

    def accepts(self, decision: Decision) -> bool:
        return decision.status == "send"

    def record_key(self, decision: Decision) -> str:
        return decision.customer_id

    def build_payload(self, decision: Decision) -> dict[str, Any]:
        """{"contact": collection record, "task": Task record or None}. The Task's WhoId is the one
        value not known before sending: it is filled from the Contact upsert result."""
        contact = {
            "attributes": {"type": "Contact"},
            self.settings.external_id_field: decision.customer_id,
            "NBA_Segment__c": decision.segment,
            "NBA_Goal__c": decision.goal,
            "NBA_Score__c": round(decision.propensity, 6),
            "NBA_Channel__c": decision.channel,
            "NBA_Template_Id__c": decision.template_id,
            "NBA_Discount_Pct__c": decision.discount_pct,
            "NBA_Subject__c": decision.subject,
            "NBA_Message__c": decision.message,
            "NBA_Last_Decision_Id__c": decision.decision_id,
            "NBA_Decided_At__c": decision.as_of.isoformat(),
        }
        task = None
        if decision.segment == "churn_rescue_nps" and decision.template_id in TASK_TEMPLATES:
            offer = f" (offer {decision.discount_pct:g}%)" if decision.discount_pct else ""
            task = {
                "attributes": {"type": "Task"},
                self.settings.task_external_id_field: decision.decision_id,
                "Subject": f"NBA customer-success follow-up: {decision.template_id}{offer}",
                "Description": decision.message,
                "Status": "Not Started",
                "Priority": "High",
                "ActivityDate": decision.as_of.date().isoformat(),
            }
        return {"contact": contact, "task": task}

    # --- sending ---------------------------------------------------------------------------------

    def send_batch(self, items: list[OutboundItem]) -> list[ItemResult]:
        s = self.settings
        need_task = any(it.payload.get("task") for it in items)
        self._check_external_id("Contact", s.external_id_field)
        if need_task:
            self._check_external_id("Task", s.task_external_id_field)
        body = {"allOrNone": False, "records": [it.payload["contact"] for it in items]}
        results = self._call("PATCH", f"composite/sobjects/Contact/{s.external_id_field}", json=body)
        if not isinstance(results, list) or len(results) != len(items):
            raise TransientError("collection upsert answered a malformed result list", destination=self.name)

        out: dict[str, ItemResult] = {}
        with_task: list[tuple[OutboundItem, str]] = []
        for it, res in zip(items, results, strict=True):
            if res.get("success"):
                if it.payload.get("task"):
                    with_task.append((it, res["id"]))
                else:
                    out[it.decision_id] = ItemResult(
                        decision_id=it.decision_id, outcome="ok", record_id=res["id"]
                    )
            else:
                out[it.decision_id] = self._row_error(it.decision_id, res.get("errors") or [])
        if with_task:
            out.update(self._send_tasks(with_task))
        return [out[it.decision_id] for it in items]

    def _send_tasks(self, rows: list[tuple[OutboundItem, str]]) -> dict[str, ItemResult]:
        ext = self.settings.task_external_id_field
        records = [dict(it.payload["task"], WhoId=contact_id) for it, contact_id in rows]
        try:
            results = self._call(
                "PATCH", f"composite/sobjects/Task/{ext}", json={"allOrNone": False, "records": records}
            )
        except (TransientError, TerminalError) as exc:
            if isinstance(exc, DestinationBlockedError):
                raise
            outcome: Outcome = "transient" if isinstance(exc, TransientError) else "terminal"
            return {
                it.decision_id: ItemResult(
                    decision_id=it.decision_id,
                    outcome=outcome,
                    error=f"contact upserted, task failed: {exc.message}",
                    retry_after=exc.retry_after,
                )
                for it, _ in rows
            }
        out = {}
        for (it, contact_id), res in zip(rows, results, strict=True):
            if res.get("success"):
                rid = f"{contact_id} task:{res['id']}"
                out[it.decision_id] = ItemResult(decision_id=it.decision_id, outcome="ok", record_id=rid)
            else:
                out[it.decision_id] = self._row_error(
                    it.decision_id, res.get("errors") or [], prefix="task: "
                )
        return out

    def _row_error(self, decision_id: str, errors: list[dict[str, Any]], prefix: str = "") -> ItemResult:
        codes = [str(e.get("statusCode", "")) for e in errors]
        transient = bool(codes) and all(c in TRANSIENT_CODES for c in codes)
        msg = (
            prefix + "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors)
            or "unknown error"
        )
        return ItemResult(
            decision_id=decision_id, outcome="transient" if transient else "terminal", error=msg
        )

    def _check_external_id(self, sobject: str, field: str) -> None:
        key = f"{sobject}.{field}"
        if key in self._checked:
            return
        describe = self._call("GET", f"sobjects/{sobject}/describe")
        fields = {f.get("name"): f for f in (describe or {}).get("fields", [])}
        if not fields.get(field, {}).get("externalId"):
            raise DestinationBlockedError(f"{EXTERNAL_ID_MISSING}: {sobject}.{field}", destination=self.name)
        self._checked.add(key)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self.settings.ca_bundle:
            kwargs["verify"] = self.settings.ca_bundle
        self._last_response = None
        try:
            try:
                return self._signed_in().restful(path, method=method, timeout=self._timeout, **kwargs)
            except SalesforceExpiredSession:
                if self._oauth is None:
                    raise
                self._last_response = None  # the token expired: sign in again, once
                return self._signed_in(again=True).restful(
                    path, method=method, timeout=self._timeout, **kwargs
                )
        except SalesforceError as exc:
            raise self._map_exception(exc) from None
        except requests.RequestException as exc:
            raise TransientError(f"connection error: {type(exc).__name__}", destination=self.name) from None

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_response = response

    def _map_exception(self, exc: SalesforceError) -> Exception:
        status = int(exc.status)
        content = exc.content
        codes: list[Any] = (
            [e.get("errorCode") for e in content if isinstance(e, dict)] if isinstance(content, list) else []
        )
        detail = body_excerpt(content)
        if status == 401:
            what = (
                "NBA_SALESFORCE__SESSION_ID" if self._oauth is None else "the connected app's session policy"
            )
            msg = f"session rejected: check {what} ({detail})"
            return DestinationBlockedError(msg, destination=self.name, status_code=status)
        if "REQUEST_LIMIT_EXCEEDED" in codes:
            usage = self._last_response.headers.get("Sforce-Limit-Info", "") if self._last_response else ""
            msg = f"REQUEST_LIMIT_EXCEEDED: 24 h API allocation used up ({usage})"
            return DestinationBlockedError(msg, destination=self.name, status_code=status)
        if EXTERNAL_ID_MISSING in detail:
            return DestinationBlockedError(detail, destination=self.name, status_code=status)
        headers = self._last_response.headers if self._last_response is not None else {}
        return error_for_status(
            self.name, status, detail, headers.get("Retry-After"), rejected="request rejected"
        )

    def close(self) -> None:
        self._session.close()

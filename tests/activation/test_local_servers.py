"""The local servers honour the vendors' contracts (tested over raw HTTP, not through our connectors)."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time

import httpx

from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer

UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def _inputs(n: int, **props) -> list[dict]:
    return [
        {
            "id": f"C{i}",
            "idProperty": "nba_customer_id",
            "objectWriteTraceId": f"d{i}",
            "properties": dict(props),
        }
        for i in range(n)
    ]


def test_hubspot_limits_auth_and_headers(hubspot_server: HubSpotServer) -> None:
    auth = {"Authorization": f"Bearer {hubspot_server.token}"}
    url = hubspot_server.url + UPSERT
    too_many = httpx.post(url, headers=auth, json={"inputs": _inputs(101)})
    assert too_many.status_code == 400 and "101 > 100" in too_many.json()["message"]
    bad_prop = httpx.post(url, headers=auth, json={"inputs": [dict(_inputs(1)[0], idProperty="firstname")]})
    assert bad_prop.status_code == 400 and "not a unique property" in bad_prop.json()["message"]
    assert (
        httpx.post(url, headers={"Authorization": "Bearer nope"}, json={"inputs": _inputs(1)}).status_code
        == 401
    )
    ok = httpx.post(url, headers=auth, json={"inputs": _inputs(3, nba_segment="x")})
    assert ok.status_code == 200
    assert {r["objectWriteTraceId"] for r in ok.json()["results"]} == {"d0", "d1", "d2"}
    for header in ("Secondly", "Secondly-Remaining", "Daily", "Daily-Remaining"):
        assert f"X-HubSpot-RateLimit-{header}" in ok.headers
    again = httpx.post(url, headers=auth, json={"inputs": _inputs(3, nba_segment="y")})
    assert [r["new"] for r in again.json()["results"]] == [False] * 3
    assert hubspot_server.stats()["unique_records"] == 3 and hubspot_server.stats()["total_writes"] == 6


def test_hubspot_declared_limit_answers_429_with_retry_after() -> None:
    with HubSpotServer(rate_limit=3, rate_window_s=5) as server:
        auth = {"Authorization": f"Bearer {server.token}"}
        codes = [httpx.post(server.url + UPSERT, headers=auth, json={"inputs": _inputs(1)}) for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429]
        assert codes[-1].json()["policyName"] == "TEN_SECONDLY_ROLLING"
        assert int(codes[-1].headers["Retry-After"]) >= 1
        assert codes[-1].headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_hubspot_207_partial_failure_shape() -> None:
    with HubSpotServer(partial_failure_rate=0.5, seed=4) as server:
        r = httpx.post(
            server.url + UPSERT,
            headers={"Authorization": f"Bearer {server.token}"},
            json={"inputs": _inputs(20)},
        )
        body = r.json()
        assert r.status_code == 207 and body["numErrors"] == len(body["errors"]) > 0
        failed = {e["context"]["objectWriteTraceId"][0] for e in body["errors"]}
        ok = {x["objectWriteTraceId"] for x in body["results"]}
        assert failed | ok == {f"d{i}" for i in range(20)} and not failed & ok
        assert server.stats()["unique_records"] == len(ok)


def test_salesforce_collections_contract(salesforce_server: SalesforceServer) -> None:
    s = salesforce_server
    client = httpx.Client(
        verify=ssl.create_default_context(cafile=s.cert_path),
        headers={"Authorization": f"Bearer {s.session_id}"},
    )
    base = s.url + "/services/data/v62.0"

    def rec(i: int, pct: float = 5) -> dict:
        return {"attributes": {"type": "Contact"}, "NBA_Customer_Id__c": f"C{i}", "NBA_Discount_Pct__c": pct}

    path = base + "/composite/sobjects/Contact/NBA_Customer_Id__c"
    big = client.patch(path, json={"allOrNone": False, "records": [rec(i) for i in range(201)]})
    assert big.status_code == 400 and big.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    rolled = client.patch(path, json={"allOrNone": True, "records": [rec(1), rec(2, pct=150)]}).json()
    assert [r["success"] for r in rolled] == [False, False]
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert s.stats()["unique_records"] == 0
    partial = client.patch(path, json={"allOrNone": False, "records": [rec(1), rec(2, pct=150)]})
    assert [r["success"] for r in partial.json()] == [True, False]
    assert partial.json()[0]["created"] is True
    assert partial.headers["Sforce-Limit-Info"].startswith("api-usage=")
    wrong = client.patch(
        base + "/composite/sobjects/Contact/Email", json={"allOrNone": False, "records": [rec(3)]}
    )
    assert "Provided external ID field does not exist or is not accessible" in wrong.json()[0]["message"]
    contact_id = partial.json()[0]["id"]
    task = client.post(base + "/sobjects/Task", json={"WhoId": contact_id, "Subject": "call"})
    assert task.status_code == 201 and s.records["Task"][task.json()["id"]]["WhoId"] == contact_id


def test_salesforce_request_limit_exceeded() -> None:
    with SalesforceServer(daily_limit=2) as s:
        client = httpx.Client(
            verify=ssl.create_default_context(cafile=s.cert_path),
            headers={"Authorization": f"Bearer {s.session_id}"},
        )
        codes = [client.get(s.url + "/services/data/v62.0/sobjects/Contact/describe") for _ in range(3)]
        assert [c.status_code for c in codes] == [200, 200, 403]
        assert codes[-1].json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert codes[-1].headers["Sforce-Limit-Info"] == "api-usage=3/2"


def _signed(secret: str, body: bytes, ts: int) -> str:
    return f"t={ts},v1=" + hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()


def test_webhook_signature_staleness_and_replay(webhook_server: WebhookServer) -> None:
    w = webhook_server
    body = json.dumps({"decision_id": "d1", "discount_pct": 5}).encode()
    url = w.url + "/hooks/nba"
    now = int(time.time())
    forged = httpx.post(
        url, content=body, headers={"X-NBA-Signature": _signed("wrong", body, now), "Idempotency-Key": "k"}
    )
    assert forged.status_code == 401 and forged.json()["error"] == "bad signature"
    stale_sig = _signed(w.secret, body, now - 3600)
    stale = httpx.post(url, content=body, headers={"X-NBA-Signature": stale_sig, "Idempotency-Key": "k"})
    assert stale.status_code == 401 and stale.json()["error"] == "stale timestamp"
    headers = {"X-NBA-Signature": _signed(w.secret, body, now), "Idempotency-Key": "k1"}
    first = httpx.post(url, content=body, headers=headers)
    replay = httpx.post(url, content=body, headers=headers)
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert w.stats()["unique_records"] == 1 and w.stats()["total_writes"] == 1 and w.stats()["replays"] == 1


def test_admin_stats_and_knobs_over_http(webhook_server: WebhookServer) -> None:
    r = httpx.post(webhook_server.url + "/_admin/knobs", json={"error_rate": 0.25})
    assert r.status_code == 200 and webhook_server.knobs.error_rate == 0.25
    assert httpx.get(webhook_server.url + "/_admin/stats").json()["knobs"]["error_rate"] == 0.25
    assert httpx.post(webhook_server.url + "/_admin/knobs", json={"nope": 1}).status_code == 400

"""Helpers of the run-level tests: the three local destination servers, the NBA_* variables that
point the connectors at them, and read-only queries of a warehouse file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Servers:
    hubspot: HubSpotServer
    salesforce: SalesforceServer
    webhook: WebhookServer

    def all(self) -> tuple[HubSpotServer, SalesforceServer, WebhookServer]:
        return self.hubspot, self.salesforce, self.webhook


def server_env(s: Servers, names: str = "hubspot,salesforce,webhook") -> dict[str, str]:
    return {
        "NBA_DESTINATIONS": names,
        "NBA_HUBSPOT__TOKEN": s.hubspot.token,
        "NBA_HUBSPOT__BASE_URL": s.hubspot.url,
        "NBA_SALESFORCE__INSTANCE_URL": s.salesforce.url,
        "NBA_SALESFORCE__SESSION_ID": s.salesforce.session_id,
        "NBA_SALESFORCE__CA_BUNDLE": s.salesforce.cert_path,
        "REQUESTS_CA_BUNDLE": s.salesforce.cert_path,
        "NBA_SALESFORCE__RATE_PER_S": "1000",
        "NBA_WEBHOOK__URL": f"{s.webhook.url}/hooks/nba",
        "NBA_WEBHOOK__SECRET": s.webhook.secret,
        "NBA_WEBHOOK__RATE_PER_S": "1000",
        "NBA_DELIVERY__BACKOFF_BASE_S": "0.01",
        "NBA_DELIVERY__BACKOFF_MAX_S": "0.05",
    }


def subprocess_env() -> dict[str, str]:
    """The test's environment (NBA_* included) for a subprocess that runs the product."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def scalar(db: Path, sql: str, params: list | None = None) -> int:
    return int(query(db, sql, params)[0][0])

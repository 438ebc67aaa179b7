from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from delivery_factory import make_decision as _make_decision

from activation.settings import DeliverySettings
from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer
from warehouse.ops_tables import ensure_ops_tables


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: no NBA_* settings leaking in, its own outbox and warehouse paths."""
    for var in list(os.environ):
        if var.startswith("NBA_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("NBA_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))


@pytest.fixture
def make_decision():
    return _make_decision


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    ensure_ops_tables(c)
    yield c
    c.close()


@pytest.fixture
def fast() -> DeliverySettings:
    return DeliverySettings(backoff_base_s=0.01, backoff_max_s=0.05, seed=7)


@pytest.fixture
def hubspot_server() -> Iterator[HubSpotServer]:
    with HubSpotServer(seed=1) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def salesforce_server() -> Iterator[SalesforceServer]:
    with SalesforceServer(seed=2) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    with WebhookServer(seed=3) as server:
        yield server  # type: ignore[misc]

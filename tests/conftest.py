"""Suite-wide isolation. Every test gets its own outbox, cache, reports and BI folders and no API key,
so no test can touch the repository's warehouse, a real endpoint or another test's files. Tests
that need a built warehouse use `demo_warehouse` (built by real dbt once per session) and get a
private copy of its DuckDB file from `warehouse_copy`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.demo_warehouse import DemoWarehouse, build_demo_warehouse, warehouse_env

_ISOLATED = ("NBA_OUTBOX_DIR", "NBA_CACHE_DIR", "NBA_REPORTS_DIR", "NBA_BI_DIR")
_CLEARED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "NBA_DESTINATIONS")


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in _ISOLATED:
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    for var in _CLEARED:
        if var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
            import os

            if os.environ.get("NBA_RECORD") == "1":
                continue
        monkeypatch.delenv(var, raising=False)
    # A test that forgets to point at a temporary warehouse must not find the repository's one.
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(tmp_path / "no-warehouse-here.duckdb"))


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> DemoWarehouse:
    """The default demo warehouse (5,000 customers, seed 42, as_of 2026-11-27), built by dbt once."""
    return build_demo_warehouse(tmp_path_factory.mktemp("demo_warehouse"))


@pytest.fixture
def demo_warehouse_env(demo_warehouse: DemoWarehouse) -> Iterator[DemoWarehouse]:
    """NBA_* variables point at the session's demo warehouse for one test (read-only use)."""
    with warehouse_env(demo_warehouse) as demo:
        yield demo


@pytest.fixture
def warehouse_copy(demo_warehouse: DemoWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, writable copy of the demo warehouse's DuckDB file for one test."""
    dst = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_warehouse.duckdb_path, dst)
    for key, value in demo_warehouse.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NBA_DUCKDB_PATH", str(dst))
    return dst

"""Warehouse tests use the suite-wide fixtures of tests/conftest.py: `demo_warehouse` (the demo
warehouse built by dbt once per session) and `demo_warehouse_env` (NBA_* paths pointing at it).

Tests that rebuild or damage a warehouse use `small_env`: a private copy (file, raw data, truth) of a
400-customer warehouse built once per session through the product's atomic build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testing.demo_warehouse import DemoWarehouse, demo_layout, generate_demo_data, warehouse_env
from warehouse import build

SMALL_CUSTOMERS = 400


@pytest.fixture(scope="session")
def small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> DemoWarehouse:
    demo = demo_layout(tmp_path_factory.mktemp("small_warehouse"), customers=SMALL_CUSTOMERS)
    generate_demo_data(demo)
    with warehouse_env(demo):
        build.build()
    return demo


@pytest.fixture
def small_env(
    small_warehouse: DemoWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> DemoWarehouse:
    """A private, writable copy of the small warehouse, with every NBA_* path pointing at it."""
    copy = demo_layout(tmp_path / "wh", customers=SMALL_CUSTOMERS)
    copy.root.mkdir(parents=True)
    shutil.copytree(small_warehouse.raw_dir, copy.raw_dir)
    shutil.copytree(small_warehouse.truth_dir, copy.truth_dir)
    shutil.copy(small_warehouse.duckdb_path, copy.duckdb_path)
    for key, value in copy.env.items():
        monkeypatch.setenv(key, value)
    return copy

"""Warehouse fixtures. `demo_warehouse` builds the demo-size warehouse once per session in a temp
dir; it only depends on warehouse.testing, so it can move to tests/conftest.py as is."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from warehouse.testing import DemoWarehouse, build_demo_warehouse, warehouse_env


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> DemoWarehouse:
    """The default demo warehouse (5,000 customers, seed 42, as_of 2026-11-27), built by dbt once."""
    return build_demo_warehouse(tmp_path_factory.mktemp("demo_warehouse"))


@pytest.fixture
def demo_warehouse_env(demo_warehouse: DemoWarehouse) -> Iterator[DemoWarehouse]:
    """NBA_* variables point at the session's demo warehouse for one test."""
    with warehouse_env(demo_warehouse) as demo:
        yield demo

"""Fixtures for the learned model: the session demo warehouse's touches and features, read once."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pytest

from agent.learned.data import logged_touches
from agent.learned.features import CustomerFeatures, build_customer_features, customer_table
from testing.demo_warehouse import DemoWarehouse


@dataclass(frozen=True)
class DemoData:
    warehouse: DemoWarehouse
    customers: pa.Table
    touches: pa.Table
    cf: CustomerFeatures


@pytest.fixture(scope="session")
def demo_data(demo_warehouse: DemoWarehouse) -> DemoData:
    con = duckdb.connect(str(demo_warehouse.duckdb_path), read_only=True)
    try:
        customers = customer_table(con)
        touches = logged_touches(con)
    finally:
        con.close()
    return DemoData(demo_warehouse, customers, touches, build_customer_features(customers, touches))

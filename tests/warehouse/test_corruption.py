"""Corrupt the raw data and check that dbt build fails on the tests that guard it, readably."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from warehouse.dbt_runner import run_dbt
from warehouse.errors import DbtFailed
from warehouse.testing import demo_layout, generate_demo_data


def _corrupt(raw: Path) -> None:
    customers = pq.read_table(raw / "customers.parquet")
    pq.write_table(pa.concat_tables([customers, customers.slice(0, 3)]), raw / "customers.parquet")
    orders = pq.read_table(raw / "orders.parquet")
    amount = orders.column("amount").to_numpy().copy()
    amount[:5] = -amount[:5]
    ids = orders.column("customer_id").to_pylist()
    ids[10:12] = ["C9999998", "C9999999"]
    orders = orders.set_column(orders.schema.get_field_index("amount"), "amount", pa.array(amount))
    orders = orders.set_column(orders.schema.get_field_index("customer_id"), "customer_id", pa.array(ids))
    pq.write_table(orders, raw / "orders.parquet")
    assert pc.min(orders.column("amount")).as_py() < 0


def test_corrupted_raw_data_fails_the_right_dbt_tests(tmp_path: Path) -> None:
    demo = demo_layout(tmp_path, customers=400)
    generate_demo_data(demo)
    _corrupt(demo.raw_dir)
    with pytest.raises(DbtFailed) as info:
        run_dbt(["build"], env=demo.env)
    failed = set(info.value.failures)
    assert "unique_stg_customers_customer_id" in failed
    assert "non_negative_stg_orders_amount" in failed
    assert any(name.startswith("relationships_stg_orders_customer_id") for name in failed)
    message = str(info.value)
    assert message.startswith("dbt build failed:") and "\n" not in message
    assert "unique_stg_customers_customer_id (Got 3 results" in message

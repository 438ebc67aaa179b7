"""Test helpers: build a small, isolated warehouse in a temporary directory.

    from testing.demo_warehouse import build_demo_warehouse, warehouse_env
    demo = build_demo_warehouse(tmp_path, customers=5000)
    with warehouse_env(demo):   # NBA_* variables point at the temporary warehouse
        ...

Used by the session fixtures in tests/conftest.py and tests/warehouse/conftest.py, and by the
benchmarks that need a warehouse of their own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse import generate
from warehouse.dbt_runner import run_dbt


@dataclass(frozen=True)
class DemoWarehouse:
    root: Path
    raw_dir: Path
    truth_dir: Path
    duckdb_path: Path
    target_dir: Path
    customers: int
    seed: int
    as_of: date

    @property
    def env(self) -> dict[str, str]:
        return {
            "NBA_RAW_DIR": str(self.raw_dir),
            "NBA_TRUTH_DIR": str(self.truth_dir),
            "NBA_DUCKDB_PATH": str(self.duckdb_path),
            "NBA_BI_DIR": str(self.root / "bi"),
            "DBT_TARGET_PATH": str(self.target_dir),
            "DBT_LOG_PATH": str(self.root / "dbt_logs"),
        }


def demo_layout(
    root: Path,
    customers: int = generate.DEFAULT_CUSTOMERS,
    seed: int = generate.DEFAULT_SEED,
    as_of: date | None = None,
) -> DemoWarehouse:
    root = Path(root).resolve()
    return DemoWarehouse(
        root=root,
        raw_dir=root / "raw",
        truth_dir=root / "truth",
        duckdb_path=root / "warehouse.duckdb",
        target_dir=root / "dbt_target",
        customers=customers,
        seed=seed,
        as_of=as_of or date.fromisoformat(generate.DEFAULT_AS_OF),
    )


def generate_demo_data(demo: DemoWarehouse) -> None:
    config = generate.GenerateConfig(seed=demo.seed, customers=demo.customers, as_of=demo.as_of)
    generate.generate(config, out=demo.raw_dir, truth_out=demo.truth_dir)


def build_demo_warehouse(
    root: Path,
    customers: int = generate.DEFAULT_CUSTOMERS,
    seed: int = generate.DEFAULT_SEED,
    as_of: date | None = None,
) -> DemoWarehouse:
    """Generate data and run `dbt build` into `root` without touching the repo's warehouse."""
    demo = demo_layout(root, customers, seed, as_of)
    generate_demo_data(demo)
    run_dbt(["build"], env=demo.env)  # unit tests included: this is where CI runs them
    shutil.copy(demo.target_dir / "run_results.json", demo.root / "build_run_results.json")
    return demo


@contextmanager
def warehouse_env(demo: DemoWarehouse) -> Iterator[DemoWarehouse]:
    """Point every NBA_* path variable at the demo warehouse for the duration of the block."""
    saved = {k: os.environ.get(k) for k in demo.env}
    os.environ.update(demo.env)
    try:
        yield demo
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def corrupt_raw_data(raw: Path) -> None:
    """Damage raw data the way a bad load does: 3 duplicate customers, 5 negative order amounts and
    2 orders of customers that do not exist. dbt build must fail on the tests that guard them."""
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

"""The ops tables (decision log, delivery log, contact ledger, ...) written by the product between
dbt builds. Their DDL has one source of truth: the dbt macro `create_ops_tables.sql`, which dbt runs
on-run-start. Python code that runs without dbt (tests, a fresh `activate` run) renders the same
macro's DuckDB implementation with jinja2 (the engine dbt's macros are written in) and runs it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import duckdb
import pyarrow as pa
from jinja2 import Environment, StrictUndefined

from warehouse.paths import DBT_DIR

MACRO_PATH = DBT_DIR / "macros" / "create_ops_tables.sql"


@lru_cache(maxsize=4)
def ops_ddl_statements(path: Path = MACRO_PATH) -> list[str]:
    """The CREATE statements of the macro's DuckDB implementation (`duckdb__create_ops_tables`), in order."""
    env = Environment(undefined=StrictUndefined, extensions=["jinja2.ext.do"])
    module = env.from_string(path.read_text()).module
    macro = getattr(module, "duckdb__create_ops_tables", None)
    if macro is None:
        raise ValueError(f"{path} defines no duckdb__create_ops_tables macro")
    statements = [s.strip() for s in str(macro()).split(";")]
    return [s for s in statements if s]


def utc_naive(ts: datetime | None) -> datetime | None:
    """ops tables hold naive UTC timestamps."""
    if ts is None:
        return None
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def ensure_ops_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ops schema and tables if missing (never drops anything)."""
    for statement in ops_ddl_statements():
        con.execute(statement)


def insert_atomically(
    con: duckdb.DuckDBPyConnection, target: str, rows: pa.Table, *, replace_on: str | None = None
) -> int:
    """Insert an Arrow table into `target` by column name in one transaction: all rows or none.
    With `replace_on`, rows of `target` whose `replace_on` value is among the new rows' go first
    (an idempotent re-write). Returns the number of rows inserted."""
    view = "_nba_insert_rows"
    con.execute("begin transaction")
    try:
        con.register(view, rows)
        if replace_on is not None:
            con.execute(f"delete from {target} where {replace_on} in (select {replace_on} from {view})")
        con.execute(f"insert into {target} by name select * from {view}")
        con.unregister(view)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return rows.num_rows

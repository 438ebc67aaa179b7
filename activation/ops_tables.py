"""The ops tables' DDL has one source of truth: the dbt macro `create_ops_tables.sql`.

Python code that runs without dbt (tests, a fresh `activate` run) executes the same CREATE
statements, read from that file: jinja lines are dropped, the remaining SQL split on `;`.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.paths import DBT_DIR

MACRO_PATH = DBT_DIR / "macros" / "create_ops_tables.sql"
_JINJA = re.compile(r"^\s*(\{%.*%\}|\{#.*|#\}.*)\s*$")
# DuckDB >= 2.0 reserves AT (time travel): a bare `at` column no longer parses. Until the macro
# quotes it, quote it here; once the macro says "at" this pattern matches nothing.
_BARE_AT = re.compile(r'(?<![\w"])at(?=\s+timestamp\b)')


def ops_ddl_statements(path: Path = MACRO_PATH) -> list[str]:
    """The CREATE statements of the macro, in order, with jinja control lines and comments removed."""
    text = path.read_text()
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    # The macro dispatches per adapter: Python writes the ops tables to DuckDB, so take that body.
    body = re.search(
        r"\{%-?\s*macro\s+duckdb__create_ops_tables\(\)\s*-?%\}(.*?)\{%-?\s*endmacro", text, re.S
    )
    if body:
        text = body.group(1)
    lines = [line for line in text.splitlines() if not _JINJA.match(line)]
    if any("{{" in line or "{%" in line for line in lines):
        raise ValueError(f"unexpected jinja left in {path}: only control lines can be stripped")
    sql = _BARE_AT.sub('"at"', "\n".join(lines))
    statements = [s.strip() for s in sql.split(";")]
    return [s for s in statements if s]


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

"""The raw Parquet files dbt reads (NBA_RAW_DIR). A damaged one is named with its cause in one line:
before dbt starts when it is not a readable Parquet file (truncated, overwritten), and when a
staging model fails on it for a column it lacks (dbt's own message names the model, and DuckDB's
binder may blame the query instead of the file)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse import paths
from warehouse.errors import WarehouseError

_SOURCE = re.compile(r"source\(\s*['\"]raw['\"]\s*,\s*['\"](\w+)['\"]\s*\)")
_COLUMN = re.compile(r"column \"?(\w+)\"?", re.IGNORECASE)
_STAGING = paths.DBT_DIR / "models" / "staging"
_FIX = "restore it, or generate the demo data again (make seed)"


class RawFileUnreadable(WarehouseError):
    """A raw file is not a readable Parquet file: the input is wrong, not the build."""

    exit_code = 2


def _unreadable(path: Path) -> str | None:
    """Why `path` is not a readable Parquet file, or None if it is."""
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"raw file {path} is not a readable Parquet file (truncated or damaged: {first}): {_FIX}"
    return None


def check_raw_files(raw_dir: Path | None = None) -> None:
    """Raise RawFileUnreadable naming the first raw file whose Parquet footer cannot be read."""
    for path in sorted((raw_dir or paths.raw_dir()).glob("*.parquet")):
        problem = _unreadable(path)
        if problem:
            raise RawFileUnreadable(problem)


def raw_file_of(node: str, raw_dir: Path | None = None) -> Path | None:
    """The raw file a staging model reads (`stg_raw__orders` -> <raw>/orders.parquet), if any."""
    sql = _STAGING / f"{node}.sql"
    found = _SOURCE.search(sql.read_text(encoding="utf-8")) if sql.is_file() else None
    return (raw_dir or paths.raw_dir()) / f"{found.group(1)}.parquet" if found else None


def diagnose(node: str, cause: str, raw_dir: Path | None = None) -> str:
    """A failing node's cause, naming its raw file and what is wrong with it when that is the reason."""
    path = raw_file_of(node, raw_dir)
    if path is None:
        return cause
    if not path.is_file():
        return f"raw file {path} is missing: {_FIX}"
    problem = _unreadable(path)
    if problem:
        return problem
    names = set(pq.read_schema(path).names)
    missing = [c for c in _COLUMN.findall(cause) if c not in names]
    if missing:
        return f"raw file {path} has no column {missing[0]!r} ({node} reads it): {_FIX}"
    return f"{cause} (raw file {path})"

"""Building the warehouse: generate raw data if missing, then `dbt build`. `ensure_warehouse()` is
the entry point for other packages (activation, evals): it builds when the DuckDB file or a mart
that Python reads is missing."""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse import generate, paths
from warehouse.dbt_runner import MART_TABLES, run_dbt
from warehouse.errors import WarehouseError


def build(
    config: generate.GenerateConfig | None = None, regenerate: bool = False, quiet: bool = True
) -> None:
    """Generate raw data if missing (or if asked), then `dbt build` (seeds, models, tests, unit tests)."""
    meta = generate.read_meta()
    wanted = config or generate.GenerateConfig()
    if regenerate or meta is None or (config is not None and meta != config.meta):
        generate.generate(wanted)
    run_dbt(["build"], quiet=quiet)


def missing_marts(db_path: Path | None = None) -> list[str]:
    db_path = db_path or paths.duckdb_path()
    if not db_path.exists():
        return list(MART_TABLES)
    try:
        with duckdb.connect(str(db_path), read_only=True) as con:
            present = {
                r[0]
                for r in con.execute(
                    "select table_name from information_schema.tables where table_schema = 'main'"
                ).fetchall()
            }
    except duckdb.Error:
        return list(MART_TABLES)
    return [t for t in MART_TABLES if t not in present]


def ensure_warehouse() -> Path:
    """Build the warehouse if the DuckDB file or any mart Python reads is missing; return its path."""
    if missing_marts():
        build()
    still = missing_marts()
    if still:
        raise WarehouseError(
            f"warehouse at {paths.duckdb_path()} still lacks {', '.join(still)} after a build"
        )
    return paths.duckdb_path()

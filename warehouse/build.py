"""Atomic builds of the DuckDB warehouse, and `ensure_warehouse()` for the packages that read it.

A build never changes the warehouse file that Python reads while it runs:

1. it takes the build lock (one build at a time; a second one gets one line naming the first) and
   refuses a file that is not this project's warehouse (warehouse/ownership.py: its marker, or
   NBA_WAREHOUSE__OVERWRITE=1 to move the file aside first);
2. it opens the current file read-only and keeps it open to the end: DuckDB then refuses every
   writer (an activation run gets DuckDB's lock error naming this build), readers keep reading the
   last good marts, and nothing can be written that the new file would miss;
3. it creates a new file of the same name in `.<stem>-build/` beside it and copies into it, with
   their DDL (constraints included), every schema the product owns (`ops`: decision log, delivery
   log, contact ledger, sync state, ...): everything except dbt's `main`;
4. `dbt build` runs against the new file; on any failure the new file is deleted and the current
   one is untouched (a failed first build leaves no file at all);
5. on success the new file gets the marker, and is checkpointed, fsynced and renamed over the current one in one
   `os.replace`: readers that opened the old file keep reading it, new ones get the new marts.

The ops tables' row counts are checked after the copy and again after dbt, so a build cannot lose a
row of them. The cost is one copy of the ops tables (the marts are built fresh, as before).
Targets other than DuckDB (`NBA_DBT_TARGET=spark`) run `dbt build` in place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from warehouse import generate, paths, sources
from warehouse.access import BuildLock, check_complete, check_path, connect, label
from warehouse.dbt_runner import MART_TABLES, run_dbt
from warehouse.errors import BadSetting, DbtFailed, WarehouseError, WarehouseUnreadable
from warehouse.ownership import claim_file, is_duckdb_file, overwrite_requested, refusal, stamp
from warehouse.raw_files import check_raw_files

# dbt builds into `main` (and `main_<custom>` schemas); every other schema belongs to the product.
_DBT_SCHEMAS = ("main",)
_SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")


# the outputs of warehouse/dbt/profiles.yml: dev (DuckDB) and spark
DBT_TARGETS = ("dev", "spark")


def dbt_target() -> str:
    """NBA_DBT_TARGET (default dev); one line naming it and the targets when it is none of them,
    before anything is built or read (dbt's own line names neither)."""
    target = os.environ.get("NBA_DBT_TARGET", "dev")
    if target not in DBT_TARGETS:
        raise BadSetting(
            f"NBA_DBT_TARGET={target!r} is not a target of warehouse/dbt/profiles.yml: use one of "
            f"{', '.join(DBT_TARGETS)} (dev, the default, is DuckDB)"
        )
    return target


def is_duckdb_target() -> bool:
    return dbt_target() == "dev"


def dbt_build_args(unit_tests: bool = False) -> list[str]:
    """`dbt build`, without the unit tests unless asked: they test the SQL, not the data, so they
    run in CI (`make test` builds the demo warehouse with them) and not in every production build
    (dbt's own advice; they add to every build's time for nothing the data needs)."""
    return ["build"] if unit_tests else ["build", "--exclude-resource-type", "unit_test"]


def build(
    config: generate.GenerateConfig | None = None,
    regenerate: bool = False,
    quiet: bool = True,
    wait_s: float = 0.0,
    unit_tests: bool = False,
    overwrite: bool | None = None,
    mapping: Path | None = None,
) -> Path:
    """Generate raw data if missing (or asked), then `dbt build` into a new file and swap it in.
    `overwrite` (default NBA_WAREHOUSE__OVERWRITE): move a file that is not ours aside first.
    `mapping` (default NBA_SOURCES__MAPPING): read a team's own tables through that mapping file
    instead of generated data (warehouse/sources.py). Either way the sources are checked against the
    raw contract first: every missing or mistyped column is named before dbt starts."""
    db = paths.duckdb_path()
    mapping = mapping or sources.configured_mapping()
    if mapping is not None and (regenerate or config is not None):
        raise BadSetting(
            f"a build from the mapping {mapping} reads your tables: generating demo data "
            f"(--seed, --customers, --as-of, --regenerate) needs {sources.MAPPING_ENV} unset"
        )
    dbt_target()  # one dbt has, before the lock file is created
    with BuildLock(db, wait_s=wait_s):
        if is_duckdb_target():  # before generating anything: a file that is not ours is refused at once
            check_path(db)
            claim_file(db, overwrite)
        if mapping is None:
            meta = generate.read_meta()
            wanted = config or generate.GenerateConfig()
            if regenerate or meta is None or (config is not None and meta != config.meta):
                generate.generate(wanted)
            check_raw_files()  # a truncated or overwritten raw file: named now, not after dbt fails on it
        raw = sources.prepare(mapping)  # every missing or mistyped column, one line each (exit 2)
        if not is_duckdb_target():
            run_dbt(dbt_build_args(unit_tests), env={"NBA_RAW_DIR": str(raw)}, quiet=quiet)
            return db
        atomic_dbt_build(db, quiet=quiet, wait_s=wait_s, unit_tests=unit_tests, overwrite=overwrite, raw=raw)
    return db


def seed(quiet: bool = True, wait_s: float = 0.0) -> None:
    """`dbt seed` in place (each seed is replaced in one statement), under the build lock."""
    db = paths.duckdb_path()
    dbt_target()  # one dbt has, before the lock file is created
    with BuildLock(db, wait_s=wait_s, what="seed"):
        if is_duckdb_target():
            check_path(db)
            claim_file(db)
        if is_duckdb_target() and db.exists():
            connect(db, read_only=False, wait_s=wait_s).close()  # busy or unreadable: one line, now
        run_dbt(["seed"], quiet=quiet)
        if is_duckdb_target():  # the seeds are ours: the next build may replace this file
            con = connect(db, read_only=False, wait_s=wait_s)
            try:
                stamp(con)
            finally:
                con.close()


def build_dir(db: Path) -> Path:
    return db.parent / f".{db.stem}-build"


def atomic_dbt_build(
    db: Path,
    quiet: bool = True,
    wait_s: float = 0.0,
    unit_tests: bool = False,
    overwrite: bool | None = None,
    raw: Path | None = None,
) -> None:
    """Steps 1 (ours?) to 5 of the module docstring; the caller holds the build lock."""
    check_path(db)
    claim_file(db, overwrite)  # never over another project's file: refused, or moved aside when asked
    staging = build_dir(db)
    shutil.rmtree(staging, ignore_errors=True)  # a build killed earlier: we hold the lock, it is stale
    staging.mkdir(parents=True)
    new = staging / db.name
    previous = _hold_previous(db, wait_s)
    try:
        try:
            carried = carry_over(previous, new, db) if previous is not None else {}
        except duckdb.Error as exc:
            raise WarehouseError(
                f"build stopped before dbt: the ops tables of {label(db)} could not be carried over "
                f"({str(exc).splitlines()[0]}); the warehouse is unchanged"
            ) from None
        try:
            env = {"NBA_DUCKDB_PATH": str(new), **({"NBA_RAW_DIR": str(raw)} if raw else {})}
            run_dbt(dbt_build_args(unit_tests), env=env, quiet=quiet)
        except DbtFailed as exc:
            kept = "the previous warehouse is unchanged" if previous else "no warehouse was written"
            raise DbtFailed(f"{exc}; {kept}", exc.failures) from None
        with duckdb.connect(str(new)) as con:
            stamp(con)  # ops.warehouse_marker: this project's, with what main holds now
        _checkpoint(new)
        _check_counts(new, carried)
        _fsync(new)
        os.replace(new, db)
        _fsync(db.parent)
    finally:
        if previous is not None:
            previous.close()
        shutil.rmtree(staging, ignore_errors=True)


def _hold_previous(db: Path, wait_s: float) -> duckdb.DuckDBPyConnection | None:
    """The current warehouse opened read-only (held until the swap), or None if there is none."""
    if not db.exists() or db.stat().st_size == 0:
        return None  # nothing to keep (an empty file is not a database)
    if db.with_name(db.name + ".wal").exists():
        # A writer was killed: replay its WAL into the file now, or it would apply to the new one.
        con = connect(db, read_only=False, wait_s=wait_s)
        con.execute("checkpoint")
        con.close()
    con = connect(db, read_only=True, wait_s=wait_s)
    try:
        check_complete(con, db)
    except BaseException:
        con.close()
        raise
    return con


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def product_schemas(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    rows = con.execute(
        "select schema_name from duckdb_schemas() where database_name = ? order by 1", [catalog]
    ).fetchall()
    return [
        s
        for (s,) in rows
        if s not in _DBT_SCHEMAS + _SYSTEM_SCHEMAS and not any(s.startswith(d + "_") for d in _DBT_SCHEMAS)
    ]


def carry_over(previous: duckdb.DuckDBPyConnection, new: Path, db: Path) -> dict[str, int]:
    """Copy every product schema (tables with their DDL and rows) of `previous` into the new file;
    return {schema.table: rows}. Refuses objects it cannot copy faithfully rather than drop them."""
    catalog = previous.execute("select current_database()").fetchone()[0]  # type: ignore[index]
    schemas = product_schemas(previous, catalog)
    if not schemas:
        return {}
    marks = ", ".join("?" for _ in schemas)
    others = previous.execute(
        f"select 'view ' || schema_name || '.' || view_name from duckdb_views() where database_name = ? "
        f"and schema_name in ({marks}) and not internal union all "
        f"select 'sequence ' || schema_name || '.' || sequence_name from duckdb_sequences() "
        f"where database_name = ? and schema_name in ({marks})",
        [catalog, *schemas, catalog, *schemas],
    ).fetchall()
    if others:
        raise WarehouseError(
            f"{label(db)} holds {', '.join(o for (o,) in others)}, which a "
            "build cannot carry over: move it to a table, then build again"
        )
    tables = previous.execute(
        f"select schema_name, table_name, sql from duckdb_tables() where database_name = ? "
        f"and schema_name in ({marks}) order by 1, 2",
        [catalog, *schemas],
    ).fetchall()
    indexes = previous.execute(
        f"select sql from duckdb_indexes() where database_name = ? and schema_name in ({marks}) "
        "and sql is not null",
        [catalog, *schemas],
    ).fetchall()
    counts: dict[str, int] = {}
    path = str(new).replace("'", "''")
    previous.execute(f"attach '{path}' as nba_next (read_only false)")
    try:
        previous.execute("use nba_next")
        for schema in schemas:
            previous.execute(f"create schema if not exists {_quote(schema)}")
        for schema, table, ddl in tables:
            previous.execute(ddl)  # CREATE TABLE <schema>.<table>(...) into nba_next (the default)
            source = f"{_quote(catalog)}.{_quote(schema)}.{_quote(table)}"
            try:
                previous.execute(f"insert into {_quote(schema)}.{_quote(table)} select * from {source}")
            except duckdb.Error as exc:
                raise WarehouseUnreadable(
                    f"{label(db)}: {schema}.{table} cannot be read "
                    f"({str(exc).splitlines()[0]}): restore the file from a backup"
                ) from None
            counts[f"{schema}.{table}"] = previous.execute(f"select count(*) from {source}").fetchone()[0]  # type: ignore[index]
        for (ddl,) in indexes:
            previous.execute(ddl)
    finally:
        previous.execute(f"use {_quote(catalog)}")
        previous.execute("detach nba_next")
    return counts


def _checkpoint(db: Path) -> None:
    """Fold a leftover WAL into the new file before it is renamed (its .wal would not follow it)."""
    if db.with_name(db.name + ".wal").exists():
        con = duckdb.connect(str(db))
        con.execute("checkpoint")
        con.close()


def _check_counts(db: Path, carried: dict[str, int]) -> None:
    if not carried:
        return
    with duckdb.connect(str(db), read_only=True) as con:
        for name, expected in carried.items():
            schema, table = name.split(".", 1)
            got = con.execute(f"select count(*) from {_quote(schema)}.{_quote(table)}").fetchone()[0]  # type: ignore[index]
            if got != expected:
                raise WarehouseError(
                    f"build aborted: {name} has {got} rows in the new warehouse, not {expected}"
                )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def missing_marts(db_path: Path | None = None) -> list[str]:
    """The marts Python reads that the warehouse lacks (all of them when there is no file).
    A file that cannot be opened is an error, never "missing": a locked or corrupt warehouse must
    not start a build beside the process that holds it, nor over data that could be restored."""
    db_path = db_path or paths.duckdb_path()
    check_path(db_path)
    if not db_path.exists() or db_path.stat().st_size == 0:
        return list(MART_TABLES)
    if not is_duckdb_file(db_path):  # someone else's file: refused, or (asked to) moved aside by the build
        if overwrite_requested():
            return list(MART_TABLES)
        raise refusal(db_path, "is not a DuckDB file")
    con = connect(db_path, read_only=True)
    try:
        check_complete(con, db_path)
        present = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'main'"
            ).fetchall()
        }
    except duckdb.Error as exc:
        raise WarehouseUnreadable(
            f"{label(db_path)} cannot be read ({str(exc).splitlines()[0]}): restore it, or move it away "
            "to build a new warehouse"
        ) from None
    finally:
        con.close()
    return [t for t in MART_TABLES if t not in present]


def ensure_warehouse() -> Path:
    """Build the warehouse if the DuckDB file or any mart Python reads is missing; return its path.
    Raises WarehouseError (one line; `exit_code`) when it cannot: busy, unreadable, build failed."""
    overwrite_requested()  # a bad NBA_WAREHOUSE__OVERWRITE is one line now, not only when a build needs it
    dbt_target()  # and a target dbt does not have
    if missing_marts():
        build()
    still = missing_marts()
    if still:
        raise WarehouseError(f"{label(paths.duckdb_path())} still lacks {', '.join(still)} after a build")
    return paths.duckdb_path()

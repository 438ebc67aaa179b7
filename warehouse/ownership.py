"""Never build over what is not ours: the warehouse file and the folders this project writes.

A build replaces the whole file at NBA_DUCKDB_PATH (warehouse/build.py renames a new file over it,
carrying over only the product's own schemas), so before it does, the file there must be this
project's warehouse:

- nothing there, an empty file, or a DuckDB database with no table or view at all: nothing to lose;
- the marker: `ops.warehouse_marker` (DDL in the dbt macro create_ops_tables) holds one row naming
  this project, written by every successful build with the relations that build left in `main`;
- a warehouse built before the marker existed is recognised by its ops tables (run log, decision
  log) and the marts Python reads, and gets the marker at this build.

Anything else is refused in one line naming the file and the way out (another path, or
NBA_WAREHOUSE__OVERWRITE=1, which first moves the file aside to `<file>.replaced-<time>`): any other
DuckDB database, a file that is not DuckDB, and, in our own warehouse, tables or views in `main`
that no build of ours made (a build rebuilds `main` and would drop them).

The outbox, reports and cache folders are claimed the same way: a folder we create, or find empty,
gets a `.activate-nba` file; one that holds only what this project writes there is ours too; any
other existing folder is refused in one line.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from warehouse import lock, paths
from warehouse.access import check_complete, check_path, connect, is_duckdb_file, translate
from warehouse.dbt_runner import MART_TABLES
from warehouse.errors import BadSetting, NotOurs, WarehouseBusy
from warehouse.ops_tables import ensure_ops_tables

PROJECT = "activate-nba"
MARKER = "ops.warehouse_marker"
OVERWRITE_ENV = "NBA_WAREHOUSE__OVERWRITE"
OWNED_TABLES = ("ops.run_log", "ops.decision_log")  # a warehouse from before the marker has these
log = logging.getLogger("warehouse.ownership")


def overwrite_requested() -> bool:
    value = os.environ.get(OVERWRITE_ENV, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise BadSetting(f"{OVERWRITE_ENV}: 0 or 1 (got {value!r})")


def project_relations() -> set[str]:
    """Every relation a dbt build of this project makes in `main`: its models and seeds."""
    dbt = paths.DBT_DIR
    return {p.stem for p in (dbt / "models").rglob("*.sql")} | {p.stem for p in (dbt / "seeds").glob("*.csv")}


def _names(items: list[str], limit: int = 4) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _relations(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = current_database() "
        "union all select schema_name, view_name from duckdb_views() "
        "where database_name = current_database() and not internal order by 1, 2"
    ).fetchall()


def _marked(con: duckdb.DuckDBPyConnection, found: set[str]) -> set[str] | None:
    """The `main` relations recorded by our last build, or None when the file carries no marker."""
    if MARKER not in found:
        return None
    row = con.execute(f"select main_relations from {MARKER} where project = ? limit 1", [PROJECT]).fetchone()
    return set(json.loads(row[0] or "[]")) if row else None


def contents_problem(con: duckdb.DuckDBPyConnection) -> str | None:
    """Why this DuckDB database is not ours to rebuild, or None when it is (or holds nothing)."""
    relations = _relations(con)
    if not relations:
        return None
    found = {f"{s}.{t}" for s, t in relations}
    main = sorted(t for s, t in relations if s == "main")
    recorded = _marked(con, found)
    if recorded is None:
        legacy = all(t in found for t in OWNED_TABLES) and all(t in main for t in MART_TABLES)
        if not legacy:
            shown = [f"{s}.{t}" for s, t in relations if s != "ops"] or sorted(found)
            return f"is a DuckDB database this project did not build (it holds {_names(shown)})"
        return None  # built before the marker: ours, marked by this build
    foreign = [t for t in main if t not in recorded | project_relations()]
    if foreign:
        return (
            f"holds tables in main that no build of this project made ({_names(foreign)}), which a build "
            "would drop: move them to a schema of their own"
        )
    return None


def file_problem(db: Path) -> str | None:
    """Why the file at `db` is not ours to rebuild, or None (no file, an empty one, or ours)."""
    if not db.exists() or db.stat().st_size == 0:
        return None
    if not is_duckdb_file(db):
        return "is not a DuckDB file"
    con = connect(db, read_only=True)  # a pending WAL is replayed in memory, nothing is written
    try:
        check_complete(con, db)
        return contents_problem(con)
    except duckdb.Error as exc:
        raise translate(exc, db) from None
    finally:
        con.close()


def check_ours(con: duckdb.DuckDBPyConnection, db: Path) -> None:
    """Refuse (NotOurs, one line) a DuckDB database that is not this project's warehouse, before a
    command that does not build (status, runs, explain, replay-dlq, ...) reads it or writes into it:
    ours carries the marker, or (built before the marker) the ops tables."""
    found = {f"{s}.{t}" for s, t in _relations(con)}
    if MARKER in found or all(t in found for t in OWNED_TABLES):
        return
    problem = contents_problem(con) or "holds none of this project's tables"
    raise NotOurs(
        f"{db} (NBA_DUCKDB_PATH) {problem}; nothing was read or written: point NBA_DUCKDB_PATH at this "
        f"project's warehouse (default {paths.default_duckdb_path()}; make build writes one)"
    )


def open_ours(
    missing: Callable[[Path], Exception], *, read_only: bool = True, wait_s: float = 0.0
) -> duckdb.DuckDBPyConnection:
    """The configured warehouse for a command that reads it, or writes into it, without building:
    one line, with nothing created or written, when the path is a directory, there is no file (the
    caller's own line: `missing(path)`), it is no DuckDB database, it is truncated or it is not this
    project's. A writer holding the file is waited for up to `wait_s`, then named from the warehouse
    lock (a build, which holds it throughout, is named after the same wait); with no wait, DuckDB's
    line naming the process stands. The caller closes the connection (`with open_ours(...) as con`)."""
    db = paths.duckdb_path()
    check_path(db)  # a directory is not "in use": say what it is
    if not db.exists():
        raise missing(db)
    try:
        con = connect(db, read_only=read_only, wait_s=wait_s)  # corrupt, not DuckDB: one line naming the file
    except WarehouseBusy:
        if not wait_s:
            raise
        raise lock.WarehouseBusy(db, lock.current_holder(db), wait_s) from None
    try:
        check_complete(con, db)  # a truncated file opens, then fails at the first missing block
        check_ours(con, db)  # another project's database: one line naming it, not a missing table
    except BaseException:
        con.close()
        raise
    return con


def refusal(db: Path, problem: str) -> NotOurs:
    return NotOurs(
        f"{db} (NBA_DUCKDB_PATH) {problem}; nothing was changed: point NBA_DUCKDB_PATH at another file, "
        f"or set {OVERWRITE_ENV}=1 (make build OVERWRITE=1) to move it aside to "
        f"{db.name}.replaced-<time> and build a new warehouse"
    )


def claim_file(db: Path, overwrite: bool | None = None) -> Path | None:
    """Refuse (NotOurs, one line) to build over a file at `db` that is not this project's warehouse;
    with `overwrite` (default: NBA_WAREHOUSE__OVERWRITE) move it and its WAL aside first and return
    where it went."""
    problem = file_problem(db)
    if problem is None:
        return None
    if not (overwrite_requested() if overwrite is None else overwrite):
        raise refusal(db, problem)
    aside = move_aside(db)
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        os.replace(wal, aside.with_name(aside.name + ".wal"))
    log.warning(
        "%s %s: moved aside to %s (%s=1); building a new warehouse", db, problem, aside, OVERWRITE_ENV
    )
    return aside


def move_aside(path: Path) -> Path:
    """What an explicit overwrite (OVERWRITE=1) does to a file first: rename it, beside itself, to
    `<name>.replaced-<UTC time>` (`-2`, `-3`, ... after it when an earlier one took that second's
    name: a file moved aside is never replaced); returns where it went."""
    base = f"{path.name}.replaced-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    aside, n = path.with_name(base), 1
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = path.with_name(f"{base}-{n}")
    os.replace(path, aside)
    return aside


def stamp(con: duckdb.DuckDBPyConnection) -> None:
    """Write the marker into a freshly built warehouse: this project, and what `main` holds now."""
    ensure_ops_tables(con)  # the marker's DDL is the dbt macro's, as every ops table's
    main = [t for s, t in _relations(con) if s == "main"]
    now = datetime.now(UTC).replace(tzinfo=None)
    row = con.execute(f"select min(marked_at) from {MARKER} where project = ?", [PROJECT]).fetchone()
    con.begin()
    try:
        con.execute(f"delete from {MARKER}")
        con.execute(
            f"insert into {MARKER} values (?, ?, ?, ?)",
            [PROJECT, (row[0] if row and row[0] else now), now, json.dumps(main)],
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise


# --- folders -----------------------------------------------------------------------------------

FOLDER_MARK = ".activate-nba"
_RUN_ID = r"\d{8}T\d{6}Z-[0-9a-f]+"
_FOLDERS = {
    "outbox": ("NBA_OUTBOX_DIR", paths.outbox_dir, re.compile(rf"^\.?{_RUN_ID}(\.(tmp|old)-.*)?$")),
    "reports": (
        "NBA_REPORTS_DIR",
        paths.reports_dir,
        re.compile(r"^(eval-[0-9a-f]+|simulate-\d{8}T\d{6}Z)$"),
    ),
    "cache": ("NBA_CACHE_DIR", paths.cache_dir, re.compile(r"^llm_decisions\.sqlite(-wal|-shm|-journal)?$")),
    "bi": (  # the exports of warehouse/bi.py (BI_TABLES) and its staging folders
        "NBA_BI_DIR",
        paths.bi_dir,
        re.compile(
            r"^(\.bi-.*|(dim_customer|mart_marketing__customer_360|mart_marketing__segment_scores)\.(csv|parquet))$"
        ),
    ),
}


def owned_dir(which: str) -> Path:
    """The outbox, reports, cache or BI folder, created if missing; refused in one line (NotOurs) when it
    exists and holds anything this project did not write there."""
    folder = check_dir(which)
    if not (folder / FOLDER_MARK).exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / FOLDER_MARK).write_text(f"{which} folder of {PROJECT}\n", encoding="utf-8")
    return folder


def check_dir(which: str) -> Path:
    """The outbox, reports, cache or BI folder, refused as `owned_dir` refuses it, with nothing created:
    what a command checks before a later refusal (busy, not our warehouse) could leave a folder behind."""
    env, where, ours = _FOLDERS[which]
    folder = where()
    if folder.exists() and not folder.is_dir():
        raise NotOurs(f"{env}={folder} is a file, not a folder: point {env} at a new or empty folder")
    if (folder / FOLDER_MARK).exists():
        return folder
    if folder.exists():
        others = sorted(p.name for p in folder.iterdir() if not ours.match(p.name))
        if others:
            raise NotOurs(
                f"{env}={folder} is a folder this project did not create (it holds {_names(others)}); "
                f"nothing was written: point {env} at a new or empty folder"
            )
    return folder


def claim_data_dir(folder: Path, env: str, ours: Callable[[Path], bool]) -> None:
    """Refuse (NotOurs, one line) a folder a build replaces whole (the generator's raw data and ground
    truth, the mapped sources) when it holds what this project did not write there: missing, empty,
    marked, or `ours(folder)` is fine; anything else is left as it is."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise NotOurs(f"{env}={folder} is a file, not a folder: point {env} at a new or empty folder")
    entries = sorted(p.name for p in folder.iterdir())
    if not entries or FOLDER_MARK in entries or ours(folder):
        return
    raise NotOurs(
        f"{env}={folder} is a folder this project did not write (it holds {_names(entries)}), which "
        f"would be replaced; nothing was written: point {env} at a new or empty folder"
    )

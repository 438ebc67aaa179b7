"""dbt docs (generate, serve) and source freshness.

Both only read: they run with the DuckDB file opened read-only (NBA_DUCKDB_ACCESS_MODE, see
profiles.yml), so they work beside the product's readers and never write the warehouse.
`serve_docs` generates only when the docs are missing or older than the project or the warehouse,
so `make docs && make serve-docs` generates once. It serves the target directory itself, as
`dbt docs serve` does (a static file server over index.html + manifest.json + catalog.json), without
dbt's start-up: `dbt docs serve` loads the project first and takes seconds to answer, this
answers as soon as Python has imported this module.
Freshness reads only the raw files (DuckDB external sources), so it runs on an in-memory database
and needs no warehouse at all; its clock is the data's as_of (macros/freshness.sql).
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from warehouse import generate, paths
from warehouse.access import reading
from warehouse.build import ensure_warehouse
from warehouse.dbt_runner import dbt_env, run_dbt
from warehouse.errors import DbtFailed, WarehouseError

_READ_ONLY = {"NBA_DUCKDB_ACCESS_MODE": "read_only"}
_DOCS_FILES = ("index.html", "manifest.json", "catalog.json")
_PROJECT_GLOBS = ("models/**/*", "macros/**/*", "seeds/**/*", "dbt_project.yml", "profiles.yml")


def target_dir() -> Path:
    return Path(dbt_env()["DBT_TARGET_PATH"])


def docs(quiet: bool = True) -> Path:
    """`dbt docs generate` against the warehouse (built first if missing); returns the target dir."""
    db = ensure_warehouse()
    with reading(db):  # a writer holding the file: one line now, not a dbt failure later
        pass
    run_dbt(["docs", "generate"], env=_READ_ONLY, quiet=quiet)
    return target_dir()


def docs_are_current(target: Path | None = None) -> bool:
    """Every docs file exists and catalog.json is newer than the project's files and the warehouse."""
    target = target or target_dir()
    if not all((target / name).exists() for name in _DOCS_FILES):
        return False
    generated = (target / "catalog.json").stat().st_mtime
    inputs = [p for pattern in _PROJECT_GLOBS for p in paths.DBT_DIR.glob(pattern) if p.is_file()]
    db = paths.duckdb_path()
    if db.exists():
        inputs.append(db)
    return all(p.stat().st_mtime <= generated for p in inputs)


class _DocsHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's signature
        pass  # one line per request is noise in a terminal


def docs_server(port: int = 8080, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server over the docs (generated first only if stale); the caller serves it."""
    if not docs_are_current():
        docs()
    handler = functools.partial(_DocsHandler, directory=str(target_dir()))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise WarehouseError(
            f"cannot serve the docs on {host}:{port}: {exc.strerror} (choose --port)"
        ) from None


def serve_docs(port: int = 8080, host: str = "127.0.0.1") -> None:
    """Serve the docs on http://host:port until interrupted."""
    with docs_server(port, host) as httpd:
        print(f"serving the dbt docs of {target_dir()} on http://{host}:{port} (Ctrl+C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            httpd.serve_forever()


@dataclass(frozen=True)
class Freshness:
    source: str
    status: str  # pass, warn, error, runtime error
    hours_behind: float | None


def freshness(quiet: bool = True) -> list[Freshness]:
    """`dbt source freshness` over the raw files; returns one result per checked source. Raises
    DbtFailed naming the stale sources when any is past its error threshold."""
    if generate.read_meta() is None:
        raise WarehouseError(f"no raw data under {paths.raw_dir()}: run `make seed` or `make build` first")
    env = {"NBA_DUCKDB_PATH": ":memory:"}
    failure: DbtFailed | None = None
    started = time.time()
    try:
        run_dbt(["source", "freshness"], env=env, quiet=quiet)
    except DbtFailed as exc:
        failure = exc
    results = read_freshness(target_dir() / "sources.json", since=started)
    stale = [r for r in results if r.status not in ("pass", "warn")]
    if stale:
        detail = "; ".join(f"{r.source} ({r.status}, {_hours(r)} behind as_of)" for r in stale)
        raise DbtFailed(f"dbt source freshness failed: {detail}", failures=[r.source for r in stale])
    if failure is not None:
        raise failure
    return results


def _hours(result: Freshness) -> str:
    return "?" if result.hours_behind is None else f"{result.hours_behind:.1f} h"


def read_freshness(sources_json: Path, since: float = 0.0) -> list[Freshness]:
    """The results of the last `dbt source freshness` (none if sources.json predates `since`)."""
    if not sources_json.exists() or sources_json.stat().st_mtime < since:
        return []
    out = []
    for r in json.loads(sources_json.read_text(encoding="utf-8"))["results"]:
        age = r.get("max_loaded_at_time_ago_in_s")
        out.append(
            Freshness(
                source=r["unique_id"].split(".", 2)[2],
                status=r["status"],
                hours_behind=None if age is None else age / 3600.0,
            )
        )
    return sorted(out, key=lambda f: f.source)

"""Run dbt on the project in a subprocess of this interpreter, with the project's profile and paths.

dbt runs from `paths.home()` (the repo root in a clone; the committed profile's relative paths are
taken from there), reads the project where it ships (`paths.DBT_DIR`, inside the package), writes
its target and logs under <home>/warehouse/dbt/ (overridable with DBT_TARGET_PATH / DBT_LOG_PATH),
and a failure becomes one readable line naming the failing nodes, read from run_results.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from warehouse import paths
from warehouse.errors import DbtFailed
from warehouse.raw_files import diagnose

MART_TABLES = (
    "dim_customer",
    "mart_marketing__customer_360",
    "mart_marketing__segment_scores",
    "mart_marketing__campaign_history",
)


def dbt_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment dbt runs with: absolute data paths (the mapped tables' folder when a mapping
    is in force), target and logs under home() (never inside an installed package)."""
    env = dict(os.environ)
    env.update(extra or {})
    if paths.configured_mapping() is not None and "NBA_RAW_DIR" not in (extra or {}):
        env["NBA_RAW_DIR"] = str(paths.read_dir())  # a team's tables, as the last build wrote them
    env["NBA_RAW_DIR"] = str(_resolve(env, "NBA_RAW_DIR", paths.raw_dir()))
    if env.get("NBA_DUCKDB_PATH") != ":memory:":
        env["NBA_DUCKDB_PATH"] = str(_resolve(env, "NBA_DUCKDB_PATH", paths.duckdb_path()))
    env.setdefault("DBT_TARGET_PATH", str(paths.dbt_target_dir()))
    env.setdefault("DBT_LOG_PATH", str(paths.dbt_log_dir()))
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DBT_PARTIAL_PARSE", "true")
    return env


def _resolve(env: Mapping[str, str], var: str, default: Path) -> Path:
    value = env.get(var)
    return Path(value).resolve() if value else default


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def dbt_executable() -> list[str]:
    """dbt's console script beside this interpreter (`python -m dbt.cli.main` makes runpy warn that
    the module was imported by its package first); a `-c` call of the same entry point otherwise."""
    script = Path(sys.executable).with_name("dbt")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from dbt.cli.main import cli; sys.exit(cli())"]


def dbt_command(args: Sequence[str]) -> list[str]:
    return [
        *dbt_executable(),
        *args,
        "--project-dir",
        str(paths.DBT_DIR),
        "--profiles-dir",
        str(paths.DBT_DIR),
    ]


def run_dbt(args: Sequence[str], env: Mapping[str, str] | None = None, quiet: bool = True) -> None:
    """Run one dbt command; raise DbtFailed (one line naming the failing nodes) if it fails."""
    full_env = dbt_env(env)
    if full_env["NBA_DUCKDB_PATH"] != ":memory:":
        Path(full_env["NBA_DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    proc = subprocess.run(dbt_command(args), cwd=paths.home(), env=full_env, text=True, capture_output=quiet)
    if proc.returncode == 0:
        return
    results = Path(full_env["DBT_TARGET_PATH"]) / "run_results.json"
    failures = failed_nodes(results, since=started, raw_dir=Path(full_env["NBA_RAW_DIR"]))
    if failures:
        detail = "; ".join(f"{name} ({message})" for name, message in failures[:10])
        more = f" and {len(failures) - 10} more" if len(failures) > 10 else ""
        raise DbtFailed(
            f"dbt {args[0]} failed: {len(failures)} node(s) failed: {detail}{more}",
            failures=[name for name, _ in failures],
        )
    tail = [_ANSI.sub("", line).strip() for line in (proc.stdout or "").strip().splitlines()[-3:]]
    detail = " | ".join(line for line in tail if line) if quiet else ""
    raise DbtFailed(f"dbt {args[0]} failed (exit {proc.returncode}): {detail or 'see dbt logs'}", failures=[])


def failed_nodes(run_results: Path, since: float = 0.0, raw_dir: Path | None = None) -> list[tuple[str, str]]:
    """(node name, its cause in one line) for every errored or failed node of the last run (a
    run_results.json older than `since` belongs to an earlier run and is ignored). A staging model
    that failed on its raw file names the file and what is wrong with it."""
    if not run_results.exists() or run_results.stat().st_mtime < since:
        return []
    results = json.loads(run_results.read_text(encoding="utf-8"))["results"]
    out = []
    for r in results:
        if r["status"] in ("error", "fail", "runtime error"):
            name = r["unique_id"].split(".")[2] if r["unique_id"].count(".") >= 2 else r["unique_id"]
            message = _cause(r.get("message") or r["status"])
            if r["status"] != "fail":  # an error, not a data test's verdict: its input may be the cause
                message = diagnose(name, message, raw_dir)
            out.append((name, message[:300]))
    return out


_HEADER = re.compile(r"^(Runtime|Database|Compilation) Error in \w+ \S+ \(.*\)$")


def _cause(message: str) -> str:
    """The line of a dbt message that says what went wrong ("Runtime Error in model x (path)" only
    names the node, which the caller names already)."""
    lines = [_ANSI.sub("", line).strip() for line in message.strip().splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1 and _HEADER.match(lines[0]):
        return lines[1]
    return lines[0] if lines else message

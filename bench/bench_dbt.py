"""Benchmark: synthetic data generation and the full `dbt build`, at two scales, side by side.

    .venv/bin/python bench/bench_dbt.py                      # 100k and 1M customers
    .venv/bin/python bench/bench_dbt.py --scales 20000,200000

For each scale it measures, in one run:
- generation time and peak RSS (a subprocess);
- the full `dbt build` (seeds, models, data tests, unit tests): wall time and peak RSS of the dbt
  process (RUSAGE_CHILDREN of a small wrapper that runs only dbt);
- the same SQL without dbt: every node's compiled SQL from run_results.json, in dbt's completion
  order, wrapped as create view/table or `select count(*)` for tests, executed in a fresh DuckDB file
  with the same settings. dbt/raw is the overhead of dbt itself (parsing, Jinja, threads, metadata).
Then the scaling of the largest vs the smallest scale against linear.

Targets: 1M build < 120 s and < 6 GB; dbt/raw <= 1.3; large/small time <= 1.2 x linear.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from warehouse.dbt_runner import dbt_command, dbt_env  # noqa: E402

WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:]).returncode\n"
    "wall = time.perf_counter() - t\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'rc': rc, 'wall': wall, 'rss_kb': rss}), file=sys.stderr)\n"
)


def measured(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    """Run cmd in a wrapper process; return its wall time and peak RSS (incl. its children)."""
    with open(log, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-c", WRAPPER, *cmd],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    stats = json.loads(proc.stderr.strip().splitlines()[-1])
    if stats["rc"] != 0:
        raise SystemExit(f"command failed ({' '.join(cmd[:4])} ...): see {log}")
    return stats


def ops_ddl() -> str:
    """The DuckDB DDL of the ops tables, read from the dbt macro as the product reads it."""
    from warehouse.ops_tables import ops_ddl_statements

    return ";\n".join(ops_ddl_statements())


def raw_replay(target: Path, db_path: Path) -> tuple[float, int]:
    """Execute dbt's compiled SQL directly in a fresh DuckDB; return (seconds, statements)."""
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = manifest["nodes"]
    unit_tests = manifest.get("unit_tests", {})
    statements: list[str] = []
    for r in results:
        uid = r["unique_id"]
        node = nodes.get(uid) or unit_tests.get(uid)
        if node is None:
            continue
        kind = node["resource_type"]
        if kind == "seed":
            types = node["config"].get("column_types") or {}
            cols = ", ".join(f"'{k}': '{v}'" for k, v in types.items())
            path = REPO / "warehouse/dbt" / node["original_file_path"]
            statements.append(
                f"create or replace table {node['relation_name']} as select * from "
                f"read_csv('{path}', header = true, columns = {{{cols}}})"
            )
        elif kind == "model":
            materialized = node["config"]["materialized"]
            statements.append(
                f"create or replace {materialized} {r['relation_name']} as {r['compiled_code']}"
            )
        elif kind in ("test", "unit_test") and r.get("compiled_code"):
            statements.append(f"select count(*) from ({r['compiled_code']}) as t")
    if db_path.exists():
        db_path.unlink()
    t0 = time.perf_counter()
    con = duckdb.connect(str(db_path))
    con.execute("set memory_limit = '4GB'; set preserve_insertion_order = false")
    con.execute(ops_ddl())
    for sql in statements:
        con.execute(sql).fetchall()
    con.close()
    return time.perf_counter() - t0, len(statements)


def bench_scale(customers: int, seed: int, work: Path) -> dict[str, float]:
    root = work / f"c{customers}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = dbt_env(
        {
            "NBA_RAW_DIR": str(root / "raw"),
            "NBA_TRUTH_DIR": str(root / "truth"),
            "NBA_DUCKDB_PATH": str(root / "dbt" / "warehouse.duckdb"),
            "DBT_TARGET_PATH": str(root / "target"),
            "DBT_LOG_PATH": str(root / "logs"),
        }
    )
    (root / "dbt").mkdir()
    gen = measured(
        [
            sys.executable,
            "-m",
            "warehouse.generate",
            "--seed",
            str(seed),
            "--customers",
            str(customers),
            "--out",
            str(root / "raw"),
            "--truth-out",
            str(root / "truth"),
        ],
        env,
        root / "generate.log",
    )
    # parse once (not timed) so both runs see a warm partial-parse cache, as in daily use
    subprocess.run(dbt_command(["parse"]), cwd=REPO, env=env, capture_output=True, check=True)
    build = measured(dbt_command(["build"]), env, root / "dbt_build.log")
    (root / "raw_engine").mkdir()
    raw_s, n_sql = raw_replay(root / "target", root / "raw_engine" / "warehouse.duckdb")
    run_phase = json.loads((root / "target" / "run_results.json").read_text())["elapsed_time"]
    return {
        "customers": customers,
        "dbt_run_s": run_phase,
        "gen_s": gen["wall"],
        "gen_gb": gen["rss_kb"] / 1e6,
        "dbt_s": build["wall"],
        "dbt_gb": build["rss_kb"] / 1e6,
        "raw_s": raw_s,
        "statements": n_sql,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="100000,1000000", help="comma-separated customer counts")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir, removed after")
    args = parser.parse_args()
    scales = sorted(int(s) for s in args.scales.split(","))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_dbt_"))
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    try:
        rows = [bench_scale(n, args.seed, work) for n in scales]
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"{'customers':>10} {'generate s':>10} {'gen GB':>7} {'dbt build s':>11} {'(run phase)':>11} "
        f"{'dbt GB':>7} {'raw SQL s':>9} {'dbt/raw':>7} {'run/raw':>7}"
        f"  (raw = {rows[0]['statements']} compiled statements in DuckDB)"
    )
    for r in rows:
        print(
            f"{r['customers']:>10,} {r['gen_s']:>10.1f} {r['gen_gb']:>7.2f} {r['dbt_s']:>11.1f} "
            f"{r['dbt_run_s']:>11.1f} {r['dbt_gb']:>7.2f} {r['raw_s']:>9.1f} "
            f"{r['dbt_s'] / r['raw_s']:>7.2f} {r['dbt_run_s'] / r['raw_s']:>7.2f}"
        )
    print("dbt build = process wall time (import + parse + run phase); run phase from run_results.json")
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        factor = hi["customers"] / lo["customers"]
        print(f"scaling {lo['customers']:,} -> {hi['customers']:,} (x{factor:g}), time ratio / linear:")
        for key, label in (("gen_s", "generate"), ("dbt_s", "dbt build"), ("raw_s", "raw SQL")):
            print(f"  {label:<10} {hi[key] / lo[key]:6.2f}x  -> {hi[key] / lo[key] / factor:5.2f} of linear")
    big = rows[-1]
    print(
        f"targets at {big['customers']:,}: dbt build {big['dbt_s']:.0f}s (<120), peak {big['dbt_gb']:.2f} GB "
        f"(<6), dbt/raw {big['dbt_s'] / big['raw_s']:.2f} (<=1.3)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

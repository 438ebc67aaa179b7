"""`nba-warehouse`: generate data, build the dbt project, docs, BI exports.

    nba-warehouse generate --seed 42 --customers 5000 --as-of 2026-11-27
    nba-warehouse build [--customers N --seed S --as-of D --regenerate]
    nba-warehouse docs
    nba-warehouse serve-docs [--port 8080]
    nba-warehouse bi [--out DIR]

`warehouse.build.ensure_warehouse()` is the Python entry point for other packages: it builds if the
DuckDB file or a mart is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import duckdb

from warehouse import generate, paths
from warehouse.build import build, ensure_warehouse
from warehouse.dbt_runner import dbt_command, dbt_env, run_dbt
from warehouse.errors import WarehouseError

__all__ = ["build", "ensure_warehouse", "export_bi", "main"]

BI_TABLES = ("dim_customer", "mart_marketing__customer_360", "mart_marketing__segment_scores")


def seed(quiet: bool = True) -> None:
    run_dbt(["seed"], quiet=quiet)


def docs(quiet: bool = True) -> None:
    if generate.read_meta() is None:
        generate.generate(generate.GenerateConfig())
    run_dbt(["docs", "generate"], quiet=quiet)


def serve_docs(port: int = 8080) -> None:
    """Generate the docs, then serve them on 127.0.0.1:port until interrupted (dbt docs serve)."""
    docs()
    cmd = dbt_command(["docs", "serve", "--port", str(port), "--host", "127.0.0.1", "--no-browser"])
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(cmd, cwd=paths.REPO_ROOT, env=dbt_env(), check=False)


def export_bi(out_dir: Path | None = None) -> list[Path]:
    """Export the BI tables to CSV and Parquet; each file is written to a temp file, then renamed."""
    out_dir = out_dir or paths.bi_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = ensure_warehouse()
    written = []
    tmp = Path(tempfile.mkdtemp(prefix=".bi-", dir=out_dir))
    try:
        with duckdb.connect(str(db_path), read_only=True) as con:
            for table in BI_TABLES:
                for fmt, ext in (("parquet", "parquet"), ("csv", "csv")):
                    staged = tmp / f"{table}.{ext}"
                    options = (
                        "format parquet, compression zstd" if fmt == "parquet" else "format csv, header true"
                    )
                    con.execute(f"copy (select * from main.{table} order by 1) to '{staged}' ({options})")
        for staged in sorted(tmp.iterdir()):
            final = out_dir / staged.name
            os.replace(staged, final)
            written.append(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return written


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nba-warehouse", description="Synthetic data, dbt warehouse, BI exports"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate raw Parquet and ground truth")
    generate.add_arguments(gen)
    b = sub.add_parser("build", help="generate raw data if missing, then dbt build")
    b.add_argument("--seed", type=generate._seed_arg, default=None)
    b.add_argument("--customers", type=generate._customers_arg, default=None)
    b.add_argument("--as-of", type=generate._date_arg, default=None)
    b.add_argument("--regenerate", action="store_true", help="regenerate raw data even if present")
    b.add_argument("--verbose", action="store_true", help="stream dbt's output")
    sub.add_parser("seed", help="dbt seed (load the reference CSVs)")
    sub.add_parser("docs", help="dbt docs generate (serve with: dbt docs serve --port 8080)")
    serve = sub.add_parser("serve-docs", help="generate and serve the dbt docs on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    bi = sub.add_parser("bi", help="export BI tables to CSV and Parquet")
    bi.add_argument("--out", type=Path, default=None, help="output directory (default NBA_BI_DIR or bi/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "generate":
            generate.run_from_args(args)
        elif args.command == "build":
            config = None
            if args.seed is not None or args.customers is not None or args.as_of is not None:
                config = generate.GenerateConfig(
                    seed=generate.DEFAULT_SEED if args.seed is None else args.seed,
                    customers=args.customers or generate.DEFAULT_CUSTOMERS,
                    as_of=args.as_of or date.fromisoformat(generate.DEFAULT_AS_OF),
                )
            build(config, regenerate=args.regenerate, quiet=not args.verbose)
            print(f"warehouse built: {paths.duckdb_path()}")
        elif args.command == "seed":
            seed()
        elif args.command == "docs":
            docs()
            print(f"docs generated under {dbt_env()['DBT_TARGET_PATH']}")
        elif args.command == "serve-docs":
            serve_docs(args.port)
        elif args.command == "bi":
            for path in export_bi(args.out):
                print(path)
    except WarehouseError as exc:
        print(f"nba-warehouse {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

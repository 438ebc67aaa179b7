"""The warehouse steps of the daily run, as one command each, for an orchestrator to call.

    python -m orchestration.steps prepare [--customers N --seed S --as-of D] [--regenerate]
    python -m orchestration.steps dbt-build      # seeds, models, unit tests (no data tests)
    python -m orchestration.steps dbt-test       # every data test

They are thin wrappers over `warehouse.generate` and `warehouse.dbt_runner.run_dbt` (absolute data
paths, target/logs under warehouse/dbt/ unless DBT_TARGET_PATH/DBT_LOG_PATH are set, a failure as
one line naming the failing nodes). The dbt target comes from NBA_DBT_TARGET (default `dev`, DuckDB;
`spark` builds the same project on Spark). Splitting build and test lets an orchestrator retry
and alert on each separately; `nba-warehouse build` still runs both in one `dbt build`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

from warehouse import generate, sources
from warehouse.dbt_runner import run_dbt
from warehouse.errors import WarehouseError


def prepare(config: generate.GenerateConfig, regenerate: bool = False) -> str:
    """Make sure raw data is there. In production an upstream load lands it and a mapping file
    (NBA_SOURCES__MAPPING) maps it onto the raw contract: checked and written for dbt here; the demo
    generates it."""
    if sources.configured_mapping() is not None:
        return f"sources mapped: {sources.prepare()}"
    meta = generate.read_meta()
    if meta is not None and not regenerate:
        return f"raw data present: {meta}"
    generate.generate(config)
    return f"raw data generated: {config.meta}"


def dbt_build(quiet: bool = False) -> None:
    run_dbt(["build", "--exclude-resource-type", "test"], quiet=quiet)


def dbt_test(quiet: bool = False) -> None:
    run_dbt(["test"], quiet=quiet)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.steps", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="generate raw data unless it is already there")
    prep.add_argument("--seed", type=generate._seed_arg, default=generate.DEFAULT_SEED)
    prep.add_argument("--customers", type=generate._customers_arg, default=generate.DEFAULT_CUSTOMERS)
    prep.add_argument("--as-of", type=generate._date_arg, default=date.fromisoformat(generate.DEFAULT_AS_OF))
    prep.add_argument("--regenerate", action="store_true")
    sub.add_parser("dbt-build", help="dbt build without data tests (seeds, models, unit tests)")
    sub.add_parser("dbt-test", help="dbt test (every data test)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "prepare":
            config = generate.GenerateConfig(seed=args.seed, customers=args.customers, as_of=args.as_of)
            print(prepare(config, regenerate=args.regenerate))
        elif args.command == "dbt-build":
            dbt_build()
        elif args.command == "dbt-test":
            dbt_test()
    except WarehouseError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:  # one line per problem
            print(f"orchestration {args.command}: {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

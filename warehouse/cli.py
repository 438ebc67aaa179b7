"""`nba-warehouse`: generate data, build the dbt project, docs, freshness, BI exports.

    nba-warehouse generate --seed 42 --customers 5000 --as-of 2026-11-27
    nba-warehouse build [--customers N --seed S --as-of D --regenerate] [--wait SECONDS] [--unit-tests]
                        [--overwrite] [--mapping sources.yml]
    nba-warehouse check-sources [--mapping sources.yml]
    nba-warehouse seed
    nba-warehouse docs
    nba-warehouse serve-docs [--port 8080]
    nba-warehouse freshness
    nba-warehouse bi [--out DIR] [--include-pii]

Exit codes: 0 done; 1 a build or a check failed; 2 bad input (an argument, an unreadable warehouse
file, a bad setting); 4 another process holds the warehouse (the line names it; try again when it is
done, or `build --wait SECONDS`). Every error is one line; check-sources (and a build whose sources
fail the check) prints one line per problem and exits 2.

The Python entry points live in non-CLI modules: `warehouse.build` (`build`, `ensure_warehouse`,
`missing_marts`), `warehouse.bi` (`export_bi`), `warehouse.docs`; they are re-exported here for
callers that imported them from this module.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import NoReturn

from core.cli import package_version
from warehouse import generate, paths, sources
from warehouse.access import BuildLock
from warehouse.bi import BI_TABLES, export_bi
from warehouse.build import build, ensure_warehouse, is_duckdb_target, missing_marts, seed
from warehouse.dbt_runner import MART_TABLES
from warehouse.docs import docs, freshness, serve_docs
from warehouse.errors import BadSetting, WarehouseError
from warehouse.ownership import claim_file, overwrite_requested

__all__ = ["BI_TABLES", "MART_TABLES", "build", "ensure_warehouse", "export_bi", "main", "missing_marts"]


def _wait_arg(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {value!r} (seconds, a number >= 0)") from None
    if not 0 <= seconds <= 86_400:
        raise argparse.ArgumentTypeError(f"invalid value {value!r} (seconds, from 0 to 86400)")
    return seconds


# the make parameter behind each flag a make target passes (make seed SEED=..., make build MAPPING=...)
_MAKE_PARAMETERS = {
    "--seed": "SEED=",
    "--customers": "CUSTOMERS=",
    "--as-of": "DATA_AS_OF=",
    "--mapping": "MAPPING=",
}


class _OneLineParser(argparse.ArgumentParser):
    """argparse whose refusal is one line naming the flag and its make parameter (argparse's own
    prints the usage block first), exit 2."""

    def error(self, message: str) -> NoReturn:
        for flag, make_name in _MAKE_PARAMETERS.items():
            message = message.replace(f"argument {flag}:", f"{flag} / {make_name}:", 1)
        text = " ".join(message.split("\n"))
        self.exit(2, f"{self.prog}: error: {text} (see --help)\n")


_MAPPING_HELP = (
    "mapping file naming your tables and columns for the raw contract (also NBA_SOURCES__MAPPING; "
    "docs/sources.md); without one the raw Parquet files are read as they are"
)


def _parser(prog: str = "nba-warehouse") -> argparse.ArgumentParser:
    parser = _OneLineParser(prog=prog, description="Synthetic data, dbt warehouse, BI exports")
    parser.add_argument("--version", action="version", version=package_version())
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate raw Parquet and ground truth")
    generate.add_arguments(gen)
    b = sub.add_parser(
        "build", help="generate raw data if missing, then dbt build into a new file and swap it in"
    )
    b.add_argument("--seed", type=generate._seed_arg, default=None)
    b.add_argument("--customers", type=generate._customers_arg, default=None)
    b.add_argument("--as-of", type=generate._date_arg, default=None)
    b.add_argument("--regenerate", action="store_true", help="regenerate raw data even if present")
    b.add_argument("--verbose", action="store_true", help="stream dbt's output")
    b.add_argument("--unit-tests", action="store_true", help="also run the dbt unit tests (CI runs them)")
    b.add_argument(
        "--overwrite", action="store_true", default=None,
        help="a file at NBA_DUCKDB_PATH that is not this project's warehouse is moved aside to "
        "<file>.replaced-<time> first (also NBA_WAREHOUSE__OVERWRITE=1); without it, it is refused",
    )  # fmt: skip
    b.add_argument(
        "--wait", type=_wait_arg, default=0.0, metavar="SECONDS",
        help="wait up to SECONDS for another process holding the warehouse (default: refuse at once)",
    )  # fmt: skip
    b.add_argument("--mapping", default=None, help=_MAPPING_HELP)
    check = sub.add_parser(
        "check-sources",
        help="check the raw sources (or your tables through --mapping) against the raw contract",
    )
    check.add_argument("--mapping", default=None, help=_MAPPING_HELP)
    sub.add_parser("seed", help="dbt seed (load the reference CSVs)")
    sub.add_parser("docs", help="dbt docs generate")
    serve = sub.add_parser("serve-docs", help="serve the dbt docs on 127.0.0.1 (generated first if stale)")
    serve.add_argument("--port", type=int, default=8080)
    sub.add_parser("freshness", help="dbt source freshness of the raw data, on the data's as_of clock")
    bi = sub.add_parser("bi", help="export BI tables to CSV and Parquet (no personal columns unless asked)")
    bi.add_argument("--out", type=Path, default=None, help="output directory (default NBA_BI_DIR or bi/)")
    bi.add_argument(
        "--include-pii", action="store_true", default=None,
        help="include personal columns (names, email, phone, address, comments); also BI_INCLUDE_PII=1",
    )  # fmt: skip
    return parser


def _build(args: argparse.Namespace) -> None:
    config = None
    if args.seed is not None or args.customers is not None or args.as_of is not None:
        config = generate.GenerateConfig(
            seed=generate.DEFAULT_SEED if args.seed is None else args.seed,
            customers=args.customers or generate.DEFAULT_CUSTOMERS,
            as_of=args.as_of or date.fromisoformat(generate.DEFAULT_AS_OF),
        )
    build(
        config,
        regenerate=args.regenerate,
        quiet=not args.verbose,
        wait_s=args.wait,
        unit_tests=args.unit_tests,
        overwrite=args.overwrite,
        mapping=_mapping(args.mapping),
    )
    print(f"warehouse built: {paths.duckdb_path()}")


def _mapping(value: str | None) -> Path | None:
    """The mapping file given (MAPPING=, --mapping); an empty one is named as empty, not taken as the
    current folder (which then "does not exist" as a mapping file)."""
    if value is None:
        return None
    if not value.strip():
        raise BadSetting(
            "MAPPING= (--mapping) is empty: give your mapping file (MAPPING=sources.yml, docs/sources.md), "
            "or leave MAPPING out to read the generator's raw files"
        )
    return Path(value).resolve()


def _check_sources(args: argparse.Namespace) -> None:
    mapping = sources.current(_mapping(args.mapping))
    if mapping.identity:  # the generator's own folder: its _meta.json is checked as a build checks it
        generate.read_meta(Path(mapping.where))
    problems = sources.check(mapping)
    if problems:
        raise sources.SourcesInvalid(problems)
    what = "raw files" if mapping.identity else "mapping"
    print(f"sources match the raw contract: {len(mapping.tables)} tables ({what} {mapping.where})")


def _bi(args: argparse.Namespace) -> None:
    result = export_bi(args.out, include_pii=args.include_pii)
    for path in result.files:
        print(path)
    if result.left_out:
        cols = ", ".join(f"{t}.{c}" for t, cs in result.left_out.items() for c in cs)
        print(f"left out personal columns: {cols} (include them with BI_INCLUDE_PII=1 or --include-pii)")


def main(argv: list[str] | None = None, prog: str = "nba-warehouse") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        if args.command == "generate":
            with BuildLock(what="generate"):
                # make seed loads the seeds into the warehouse next: a file there that is not ours is
                # refused now, before the raw data and the truth are replaced
                if is_duckdb_target() and not overwrite_requested():
                    claim_file(paths.duckdb_path(), overwrite=False)
                generate.run_from_args(args)
        elif args.command == "build":
            _build(args)
        elif args.command == "check-sources":
            _check_sources(args)
        elif args.command == "seed":
            seed()
        elif args.command == "docs":
            print(f"docs generated under {docs()}")
        elif args.command == "serve-docs":
            serve_docs(args.port)
        elif args.command == "freshness":
            for r in freshness():
                behind = "?" if r.hours_behind is None else f"{r.hours_behind:.1f} h"
                print(f"{r.source}: {r.status} ({behind} behind as_of)")
        elif args.command == "bi":
            _bi(args)
    except WarehouseError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:  # one line per problem
            print(f"{prog} {args.command}: {line}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

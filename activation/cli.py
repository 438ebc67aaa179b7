"""`nba-activate`: decide next-best actions for a segment and activate them.

nba-activate --segment all --dry-run 1 --mode llm --goal 90d_clv --discount-cap 5 --suppress-hours 24
nba-activate replay-dlq
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import NoReturn, cast

from agent.contracts import GOALS, MODES, SEGMENTS


def _bool01(value: str) -> bool:
    if value in {"1", "true", "yes"}:
        return True
    if value in {"0", "false", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"invalid value {value!r} (choose from 0, 1)")


def _cap(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {value!r} (a number from 0 to 100)") from None
    if not 0 <= v <= 100:
        raise argparse.ArgumentTypeError(f"invalid value {value!r} (a number from 0 to 100)")
    return v


def _hours(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {value!r} (hours, a number >= 0)") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"invalid value {value!r} (hours, a number >= 0)")
    return v


def _as_of(value: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {value!r} (ISO date or timestamp, e.g. 2026-11-27T14:00Z)"
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


class OneLineParser(argparse.ArgumentParser):
    """Bad input gets one line that names the problem and the valid values, and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="nba-activate",
        description="Decide a guardrailed next-best action for each customer of a segment and activate it "
        "(dry run: write the outbox; live: HubSpot, Salesforce, webhook).",
    )
    p.add_argument("--segment", choices=("all", *SEGMENTS), default="all", help="segment to activate")
    p.add_argument(
        "--dry-run", type=_bool01, default=True, metavar="{0,1}", help="1: write outbox/<run_id>/ only"
    )
    p.add_argument("--mode", choices=MODES, default="llm", help="policy: deterministic rules or the LLM")
    p.add_argument("--goal", choices=GOALS, default="90d_clv", help="what the policy optimises")
    p.add_argument("--discount-cap", type=_cap, default=5.0, metavar="0-100", help="max discount percent")
    p.add_argument(
        "--suppress-hours",
        type=_hours,
        default=24.0,
        metavar="H",
        help="no contact within H hours of the last one (any destination)",
    )
    p.add_argument("--prompt-version", default="v1", help="prompts/nba/<version> (LLM mode)")
    p.add_argument(
        "--as-of", type=_as_of, default=None, help="decision time (default: data as_of, 14:00 UTC)"
    )
    p.add_argument("--sample", type=int, default=None, help="only the first N segmented customers")
    p.add_argument("--force", action="store_true", help="send even if the circuit breaker trips")
    p.add_argument("--output", choices=("table", "json"), default="table", help="summary format")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as prog:

        def factory(label: str, total: int) -> Callable[[int], None]:
            task = prog.add_task(label, total=total)
            return lambda n: prog.advance(task, n)

        yield factory


def _simulate_outcomes_cli(argv: list[str]) -> int:
    import duckdb

    from activation.outcomes import simulate_outcomes
    from warehouse import paths

    p = OneLineParser(
        prog="nba-activate simulate-outcomes",
        description="Draw synthetic outcomes for a run's decisions from the generator's truth.",
    )
    p.add_argument("--run-id", default=None, help="default: the latest run")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        n = simulate_outcomes(duckdb.connect(str(paths.duckdb_path())), args.run_id, seed=args.seed)
    except (ValueError, FileNotFoundError, duckdb.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{n} outcomes written to ops.decision_outcomes; `make build` refreshes mart_marketing__holdout_lift"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replay-dlq"]:
        from activation.delivery_glue import replay_cli

        return replay_cli(argv[1:])
    if argv[:1] == ["simulate-outcomes"]:
        return _simulate_outcomes_cli(argv[1:])
    args = build_parser().parse_args(argv)
    from activation.errors import EXIT_BAD_INPUT, EXIT_OK, ActivationError, ConfigError, DeliveryIncomplete
    from activation.lock import WarehouseBusy
    from activation.render import print_summary
    from activation.run import run_activation
    from activation.summary import RunSummary
    from agent.errors import AgentError

    status, report, code = "completed", [], EXIT_OK
    try:
        with _progress(not args.no_progress and args.output == "table" and sys.stderr.isatty()) as factory:
            summary = run_activation(
                mode=args.mode,
                segment=args.segment,
                goal=args.goal,
                discount_cap=args.discount_cap,
                suppress_hours=args.suppress_hours,
                dry_run=args.dry_run,
                prompt_version=args.prompt_version,
                as_of=args.as_of,
                force=args.force,
                sample=args.sample,
                progress_factory=factory,
            )
    except DeliveryIncomplete as exc:  # a live run with rows not delivered: partial (3) or failed (1)
        summary, status, report, code = cast(RunSummary, exc.summary), exc.status, exc.lines, exc.exit_code
    except WarehouseBusy as exc:  # another run holds the warehouse (4)
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ConfigError as exc:  # a missing or invalid NBA_* setting is bad input (2)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ActivationError, AgentError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps({**summary.model_dump(mode="json"), "status": status}, indent=2))
    else:
        print_summary(summary)
    for line in report:  # what failed and how to retry
        print(line, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

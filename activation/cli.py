"""`nba-activate`: decide next-best actions for a segment and activate them.

    nba-activate activate --segment all --mode rules --goal 90d_clv --discount-cap 5 --suppress-hours 24
    nba-activate activate --live           (send to NBA_DESTINATIONS)
    nba-activate replay-dlq
    nba-activate simulate-outcomes

Every option's default and validation come from the settings model (activation.settings,
core.config); an option not given falls back to its `NBA_*` variable, then to the default.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, cast

import typer

from activation.settings import ActivateSettings
from core.cli import run, setting, version_option
from core.config import load_settings

app = typer.Typer(
    name="nba-activate",
    help="Decide a guardrailed next-best action for each customer of a segment and activate it "
    "(dry run: write the outbox; live: HubSpot, Salesforce, webhook).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
A = ActivateSettings


@app.callback()
def _main(version: Annotated[bool, version_option()] = False) -> None:
    """Warehouse-native customer activation with guardrailed decisioning."""


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as prog:

        def factory(label: str, total: int) -> Callable[[int], None]:
            task = prog.add_task(label, total=total)
            return lambda n: prog.advance(task, n)

        yield factory


@app.command()
def activate(
    segment: Annotated[str | None, setting(A, "segment", "Who to decide for.")] = None,
    mode: Annotated[
        str | None, setting(A, "mode", "The policy that proposes (guardrailed either way).")
    ] = None,
    goal: Annotated[str | None, setting(A, "goal", "What the policy optimises.")] = None,
    discount_cap: Annotated[
        str | None, setting(A, "discount_cap", "No decision offers more (percent).", metavar="0-100")
    ] = None,
    suppress_hours: Annotated[
        str | None,
        setting(
            A, "suppress_hours", "Nobody is contacted twice within H hours (any destination).", metavar="H"
        ),
    ] = None,
    prompt_version: Annotated[
        str | None, setting(A, "prompt_version", "prompts/nba/<version> (LLM mode).", metavar="VERSION")
    ] = None,
    as_of: Annotated[
        str | None,
        setting(
            A, "as_of", "Decision time, ISO (default: the data's as_of date, 14:00 UTC).", metavar="TIMESTAMP"
        ),
    ] = None,
    global_holdout_pct: Annotated[
        str | None,
        setting(A, "global_holdout_pct", "Global control group (percent of customers).", metavar="0-100"),
    ] = None,
    segment_holdout_pct: Annotated[
        str | None, setting(A, "segment_holdout_pct", "Per-segment holdout (percent).", metavar="0-100")
    ] = None,
    dry_run: Annotated[
        bool | None,
        setting(
            A,
            "dry_run",
            "Dry run: write outbox/<run_id>/ only; --live sends to NBA_DESTINATIONS.",
            "--dry-run/--live",
        ),
    ] = None,
    limit: Annotated[
        str | None, setting(A, "limit", "Only the first N segmented customers.", metavar="N")
    ] = None,
    force: Annotated[
        bool | None, setting(A, "force", "Send even if the circuit breaker trips.", "--force/--no-force")
    ] = None,
    output: Annotated[str | None, setting(A, "output", "Summary format.")] = None,
    progress: Annotated[
        bool,
        typer.Option("--progress/--no-progress", help="Progress bars on stderr (when it is a terminal)."),
    ] = True,
) -> int:
    """Decide for every customer of SEGMENT and activate (or, on a dry run, write the outbox).

    Exit codes: 0 ok, 1 failed run, 2 bad input, 3 partial delivery (retried by the next run or
    replay-dlq), 4 another run holds the warehouse, 5 refused by the promotion gate."""
    from activation.errors import EXIT_OK, DeliveryIncomplete
    from activation.render import print_summary
    from activation.run import run_activation
    from activation.summary import RunSummary

    settings = load_settings(
        ActivateSettings,
        segment=segment,
        mode=mode,
        goal=goal,
        discount_cap=discount_cap,
        suppress_hours=suppress_hours,
        prompt_version=prompt_version,
        as_of=as_of,
        global_holdout_pct=global_holdout_pct,
        segment_holdout_pct=segment_holdout_pct,
        dry_run=dry_run,
        limit=limit,
        force=force,
        output=output,
    )
    status, report, code = "completed", [], EXIT_OK
    try:
        with _progress(progress and settings.output == "table" and sys.stderr.isatty()) as factory:
            summary = run_activation(settings, progress_factory=factory)
    except DeliveryIncomplete as exc:  # a live run with rows not delivered: partial (3) or failed (1)
        summary, status, report, code = cast(RunSummary, exc.summary), exc.status, exc.lines, exc.exit_code
    if settings.output == "json":
        print(json.dumps({**summary.model_dump(mode="json"), "status": status}, indent=2))
    else:
        print_summary(summary)
    for line in report:  # what failed and how to retry
        print(line, file=sys.stderr)
    return code


@app.command("replay-dlq")
def replay_dlq(
    decision_id: Annotated[list[str] | None, typer.Option(help="Only these decisions (repeatable).")] = None,
) -> int:
    """Re-send every outstanding (pending, failed) row and the dead-letter queue to NBA_DESTINATIONS.
    Exit codes as for activate."""
    import duckdb

    from activation.delivery import replay_dead_letters
    from activation.delivery_glue import failure_report
    from activation.destinations import destinations_for
    from activation.errors import EXIT_OK, DeliveryIncomplete
    from warehouse import paths
    from warehouse.lock import warehouse_lock

    settings = load_settings(ActivateSettings, dry_run=False)
    destinations = destinations_for(settings)
    with warehouse_lock(paths.duckdb_path(), command="nba-activate replay-dlq"):
        con = duckdb.connect(str(paths.duckdb_path()))
        result = replay_dead_letters(con, destinations, settings=settings.delivery, decision_ids=decision_id)
        status = result.status
        lines = [] if status == "completed" else failure_report(con, result.run_id, status)
        con.close()
    print(json.dumps({**result.model_dump(mode="json"), "status": status}, indent=2))
    for line in lines:
        print(line, file=sys.stderr)
    return (
        EXIT_OK
        if status == "completed"
        else DeliveryIncomplete(status, summary=result, lines=lines).exit_code
    )


@app.command("simulate-outcomes")
def simulate_outcomes_cmd(
    run_id: Annotated[
        str | None, typer.Option(help="The run to draw outcomes for [default: the latest run]")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the draws.")] = 0,
) -> int:
    """Draw synthetic outcomes for a run's decisions from the generator's truth (demo only)."""
    import duckdb

    from warehouse import paths
    from warehouse.outcomes import simulate_outcomes

    n = simulate_outcomes(duckdb.connect(str(paths.duckdb_path())), run_id, seed=seed)
    print(
        f"{n} outcomes written to ops.decision_outcomes; `make build` refreshes mart_marketing__holdout_lift"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(app, argv, prog="nba-activate")


if __name__ == "__main__":
    sys.exit(main())

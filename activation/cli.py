"""`nba-activate`: decide next-best actions for a segment and activate them.

    nba-activate activate --segment all --mode rules --goal 90d_clv --discount-cap 5 --suppress-hours 24
    nba-activate activate --live           (send to NBA_DESTINATIONS)
    nba-activate replay-dlq
    nba-activate simulate-outcomes

Every option's default and validation come from the settings model (activation.settings,
core.config); an option not given falls back to its `NBA_*` variable, then to the default.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

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
    """Decide for every customer of SEGMENT and activate (or, on a dry run, write the outbox)."""
    from activation.render import print_summary
    from activation.run import run_activation

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
    with _progress(progress and settings.output == "table" and sys.stderr.isatty()) as factory:
        summary = run_activation(settings, progress_factory=factory)
    if settings.output == "json":
        print(summary.model_dump_json(indent=2))
    else:
        print_summary(summary)
    return 0


@app.command("replay-dlq")
def replay_dlq(
    decision_id: Annotated[list[str] | None, typer.Option(help="Only these decisions (repeatable).")] = None,
) -> int:
    """Re-send what the dead-letter queue holds, to NBA_DESTINATIONS."""
    import duckdb

    from activation.delivery import replay_dead_letters
    from activation.destinations import destinations_for
    from warehouse import paths

    settings = load_settings(ActivateSettings, dry_run=False)
    con = duckdb.connect(str(paths.duckdb_path()))
    result = replay_dead_letters(
        con, destinations_for(settings), settings=settings.delivery, decision_ids=decision_id
    )
    print(result.model_dump_json(indent=2))
    return 0 if result.ok else 1


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

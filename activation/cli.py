"""`nba-activate`: decide next-best actions, review the plan, send exactly it, and look back.

    nba-activate plan                       decide and write the plan (a dry run: outbox/<run_id>/)
    nba-activate apply --plan RUN_ID        send exactly that plan (refused when stale or outdated)
    nba-activate activate --live            decide and send in one go (NBA_DESTINATIONS)
    nba-activate explain --customer-id C0000042 [--prompt]
    nba-activate runs | status
    nba-activate replay-dlq | simulate-outcomes

Every option's default and validation come from the settings model (activation.settings,
core.config); an option not given falls back to its `NBA_*` variable, then to the default. Data goes
to stdout (a table, or JSON with --output json); progress bars and what failed go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from activation.settings import ActivateSettings
from core.cli import new_app, run, setting, version_option
from core.config import load_settings
from core.errors import ConfigError, UserError

app = new_app(
    "nba-activate",
    "Decide a guardrailed next-best action for each customer of a segment, review the plan, "
    "send exactly it (HubSpot, Salesforce, webhook), and explain any customer's decision.",
    subcommands=True,
)
A = ActivateSettings

# --- the options every deciding command shares (defaults shown are the settings model's) ----------
Segment = Annotated[str | None, setting(A, "segment", "Who to decide for.")]
Mode = Annotated[str | None, setting(A, "mode", "The policy that proposes (guardrailed either way).")]
Goal = Annotated[str | None, setting(A, "goal", "What the policy optimises.")]
Cap = Annotated[str | None, setting(A, "discount_cap", "No decision offers more (percent).", metavar="0-100")]
Suppress = Annotated[
    str | None,
    setting(A, "suppress_hours", "Nobody is contacted twice within H hours (any destination).", metavar="H"),
]
Prompt = Annotated[
    str | None, setting(A, "prompt_version", "agent/prompts/nba/<version> (LLM mode).", metavar="VERSION")
]
AsOf = Annotated[
    str | None,
    setting(
        A, "as_of", "Decision time, ISO (default: the data's as_of date, 14:00 UTC).", metavar="TIMESTAMP"
    ),
]
GlobalHoldout = Annotated[
    str | None,
    setting(A, "global_holdout_pct", "Global control group (percent of customers).", metavar="0-100"),
]
SegmentHoldout = Annotated[
    str | None, setting(A, "segment_holdout_pct", "Per-segment holdout (percent).", metavar="0-100")
]
Limit = Annotated[str | None, setting(A, "limit", "Only the first N segmented customers.", metavar="N")]
Force = Annotated[
    bool | None,
    setting(
        A, "force", "Send even if the circuit breaker or the promotion gate refuses.", "--force/--no-force"
    ),
]
Output = Annotated[str | None, setting(A, "output", "Output format.")]
ShowProgress = Annotated[
    bool,
    typer.Option(
        "--progress/--no-progress",
        show_default=False,
        help="Progress on stderr: bars on a terminal, a line every 15 s otherwise. [default: --progress]",
    ),
]


@app.callback()
def _main(version: Annotated[bool, version_option()] = False) -> None:
    """Warehouse-native customer activation with guardrailed decisioning."""


def _bars(enabled: bool) -> Any:
    from activation.progress import progress_bars

    return progress_bars(enabled, terminal=sys.stderr.isatty())


def _finish(summary: Any, status: str, report: list[str], output: str) -> None:
    from activation.render import print_summary

    if output == "json":
        print(json.dumps({**summary.model_dump(mode="json"), "status": status}, indent=2))
    else:
        print_summary(summary)
    for line in report:  # what failed and how to retry
        print(line, file=sys.stderr)


def _show(output: str, data: Any, table: Callable[[Any], None]) -> None:
    """A read command's answer on stdout: as JSON for OUTPUT=json, else as `table` prints it."""
    if output == "json":
        print(json.dumps(data, indent=2, default=str))
    else:
        table(data)


def _decide(progress: bool, **given: Any) -> int:
    from activation.errors import EXIT_OK, DeliveryIncomplete
    from activation.run import run_activation

    settings = load_settings(ActivateSettings, **given)
    summary: Any
    status, report, code = "completed", [], EXIT_OK
    try:
        with _bars(progress) as factory:
            summary = run_activation(settings, progress_factory=factory)
    except DeliveryIncomplete as exc:  # a live run with rows not delivered: partial (3) or failed (1)
        summary, status, report, code = exc.summary, exc.status, exc.lines, exc.exit_code
    _finish(summary, status, report, settings.output)
    return code


@app.command()
def plan(
    segment: Segment = None, mode: Mode = None, goal: Goal = None, discount_cap: Cap = None,
    suppress_hours: Suppress = None, prompt_version: Prompt = None, as_of: AsOf = None,
    global_holdout_pct: GlobalHoldout = None, segment_holdout_pct: SegmentHoldout = None, limit: Limit = None,
    output: Output = None, progress: ShowProgress = True,
) -> int:  # fmt: skip
    """Decide for every customer of SEGMENT and write the plan, sending nothing (a dry run).

    outbox/<run_id>/ holds the payloads per destination and the per-customer plan (plan.txt;
    plan.jsonl): create / update (with the fields that change) / unchanged per destination, and why
    each customer not sent is not. `apply --plan <run_id>` then sends exactly that plan."""
    return _decide(
        progress, segment=segment, mode=mode, goal=goal, discount_cap=discount_cap, suppress_hours=suppress_hours,
        prompt_version=prompt_version, as_of=as_of, global_holdout_pct=global_holdout_pct,
        segment_holdout_pct=segment_holdout_pct, limit=limit, output=output, dry_run=True,
    )  # fmt: skip


@app.command()
def activate(
    segment: Segment = None, mode: Mode = None, goal: Goal = None, discount_cap: Cap = None,
    suppress_hours: Suppress = None, prompt_version: Prompt = None, as_of: AsOf = None,
    global_holdout_pct: GlobalHoldout = None, segment_holdout_pct: SegmentHoldout = None,
    dry_run: Annotated[
        bool | None,
        typer.Option("--dry-run/--live", show_default=False, help="--dry-run writes the plan only (as `plan` "
                     "does); --live sends to NBA_DESTINATIONS. [default: --dry-run]"),
    ] = None,
    limit: Limit = None, force: Force = None, output: Output = None, progress: ShowProgress = True,
) -> int:  # fmt: skip
    """Decide for every customer of SEGMENT and activate: send (--live), or write the plan (dry run).

    Exit codes: 0 ok, 1 failed run, 2 bad input, 3 partial delivery (retried by the next run or
    replay-dlq), 4 another run holds the warehouse, 5 refused by the promotion gate."""
    return _decide(
        progress, segment=segment, mode=mode, goal=goal, discount_cap=discount_cap, suppress_hours=suppress_hours,
        prompt_version=prompt_version, as_of=as_of, global_holdout_pct=global_holdout_pct,
        segment_holdout_pct=segment_holdout_pct, dry_run=dry_run, limit=limit, force=force, output=output,
    )  # fmt: skip


@app.command()
def apply(
    plan_id: Annotated[
        str | None, typer.Option("--plan", help="The plan's run id (make plan prints it).", metavar="RUN_ID")
    ] = None,
    force: Force = None,
    output: Output = None,
    progress: ShowProgress = True,
) -> int:
    """Send exactly the plan of a dry run to NBA_DESTINATIONS: its payloads, not a new decision.

    Refused (one line, exit 2, nothing sent) when the plan is older than NBA_PLAN__MAX_AGE_MINUTES,
    was built on another warehouse state or for other destinations, or was applied already.
    Then exit codes as for activate."""
    from activation.apply import apply_plan
    from activation.errors import EXIT_OK, DeliveryIncomplete

    if not plan_id:
        raise UserError(
            "PLAN= / --plan: which plan? e.g. make apply PLAN=20261127T140000Z-3f9a1c (make runs lists them)"
        )
    settings = load_settings(ActivateSettings, dry_run=False, force=force, output=output)
    summary: Any
    status, report, code = "completed", [], EXIT_OK
    try:
        with _bars(progress) as factory:
            summary = apply_plan(settings, plan_id, progress_factory=factory)
    except DeliveryIncomplete as exc:
        summary, status, report, code = exc.summary, exc.status, exc.lines, exc.exit_code
    _finish(summary, status, report, settings.output)
    return code


@app.command()
def explain(
    customer_id: Annotated[
        str | None, typer.Option(help="The customer (make: CUSTOMER_ID=...).", metavar="ID")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="The run to explain [default: the latest that decided for them].")
    ] = None,
    prompt: Annotated[bool, typer.Option("--prompt/--no-prompt", help="Also render the LLM prompt.")] = False,
    prompt_version: Prompt = None,
    output: Output = None,
) -> int:
    """Explain one customer's decision: segment and why, eligibility in words, the policy's proposal,
    every guardrail step with before/after, the final decision and its deliveries."""
    from activation.explain import explain as explain_customer
    from activation.explain import rendered_prompt
    from activation.render import print_explanation
    from activation.runs import read_only

    if not customer_id:
        raise UserError(
            "CUSTOMER_ID= / --customer-id: which customer? e.g. make explain CUSTOMER_ID=C0000042 "
            "(decided customers are listed in outbox/<run_id>/plan.txt)"
        )
    settings = load_settings(ActivateSettings, output=output, prompt_version=prompt_version)
    with read_only() as con:
        x = explain_customer(con, customer_id, settings=settings, run_id=run_id)
        if prompt and x.get("segment", {}).get("segment"):
            version = (x.get("decision") or {}).get("prompt_version") or x.get("proposal", {}).get(
                "prompt_version"
            )
            x["prompt"] = rendered_prompt(
                con, customer_id, settings=settings, prompt_version=prompt_version or version
            )
    _show(settings.output, x, print_explanation)
    return 0


@app.command()
def runs(
    last: Annotated[
        str | None, typer.Option(help="How many runs, newest first (1-1000). [default: 10]", metavar="N")
    ] = None,
    output: Output = None,
) -> int:
    """The last runs from ops.run_log: kind (plan, live, apply), status, sends, rows delivered and not,
    duration."""
    from activation.render import print_runs
    from activation.runs import holder, read_only, recent_runs

    count = 10 if last is None else last.strip()
    if not (isinstance(count, int) or (count.isascii() and count.isdigit() and 1 <= int(count) <= 1000)):
        raise ConfigError("--last / LAST=", "must be a whole number from 1 to 1000", last)
    settings = load_settings(ActivateSettings, output=output)
    live = holder()
    with read_only() as con:
        rows = recent_runs(con, int(count), live.run_id if live else None)
    _show(settings.output, rows, print_runs)
    return 0


@app.command()
def status(output: Output = None) -> int:
    """The latest run, what is owed to each destination, and the plan waiting to be applied."""
    from activation.render import print_status
    from activation.runs import warehouse_status

    settings = load_settings(ActivateSettings, output=output)
    info = warehouse_status()
    _show(settings.output, info, print_status)
    return 0


@app.command("replay-dlq")
def replay_dlq(
    decision_id: Annotated[list[str] | None, typer.Option(help="Only these decisions (repeatable).")] = None,
    output: Output = None,
) -> int:
    """Re-send every outstanding (pending, failed) row and the dead-letter queue to NBA_DESTINATIONS.
    Exit codes as for activate."""
    from activation.delivery import replay_dead_letters
    from activation.delivery_glue import failure_report
    from activation.destinations import destinations_for
    from activation.errors import EXIT_OK, DeliveryIncomplete
    from activation.render import print_replay
    from activation.run_log import sweep_dead_runs
    from activation.runs import after_run, open_ours
    from warehouse import paths
    from warehouse.lock import warehouse_lock

    settings = load_settings(ActivateSettings, dry_run=False, output=output)
    destinations = destinations_for(settings)
    with warehouse_lock(paths.duckdb_path(), command="nba-activate replay-dlq"):
        con = open_ours(read_only=False)  # none there, or not ours: one line, nothing created
        try:
            sweep_dead_runs(con, noticed_by="replay-dlq")  # before it re-sends what they owe
            result = replay_dead_letters(
                con, destinations, settings=settings.delivery, decision_ids=decision_id
            )
            status = result.status
            lines = [] if status == "completed" else failure_report(con, result.run_id, status)
            lines += after_run(con, settings, result, command="replay-dlq", status=status)[1:]
        finally:
            con.close()
    if settings.output == "json":
        print(json.dumps({**result.model_dump(mode="json"), "status": status}, indent=2))
    else:
        print_replay(result.model_dump(mode="json"), status)
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
    from activation.runs import open_ours
    from warehouse.outcomes import simulate_outcomes

    n = simulate_outcomes(open_ours(read_only=False), run_id, seed=seed)
    print(
        f"{n} outcomes written to ops.decision_outcomes; `make build` refreshes mart_marketing__holdout_lift"
    )
    return 0


def main(argv: list[str] | None = None, prog: str = "nba-activate") -> int:
    try:
        return run(app, argv, prog=prog)
    except BrokenPipeError:  # `nba-activate runs --output json | head`: no traceback (exit 1, as rich does)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())

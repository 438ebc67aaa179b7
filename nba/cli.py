"""`nba`: the one command. Each subcommand is a command group's own CLI, imported only when asked for,
so `nba --version` and `nba --help` stay fast and every group keeps its flags, messages and exit codes.

    nba plan | apply | activate | explain | runs | status | replay-dlq | simulate-outcomes
    nba eval [--mode ... | ope ...]          offline evaluation (evals.cli)
    nba warehouse generate | build | seed | docs | serve-docs | freshness | bi
    nba agent prompt | llm-prepare | llm-serve
    nba llm-batch export | run | submit | import
    nba simulate-days [...]

A first word that names no group is one of the activation commands (activation.cli), which also
answers for a command that does not exist. The older console scripts (nba-activate, nba-eval,
nba-warehouse, nba-agent) remain as aliases of the groups they name.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from core.cli import package_version

# group word -> (module whose `main(argv, prog)` runs it, one line of help)
GROUPS: dict[str, tuple[str, str]] = {
    "eval": (
        "evals.cli",
        "offline evaluation of a policy or prompt against a baseline (eval ope: any logged table)",
    ),
    "warehouse": ("warehouse.cli", "synthetic data, the dbt build, docs, freshness, BI exports"),
    "agent": ("agent.cli", "prompt iteration and the embedded model (prompt, llm-prepare, llm-serve)"),
    "llm-batch": (
        "agent.batch_cli",
        "a plan's LLM requests as OpenAI Batch API files (export, run, submit, import)",
    ),
    "simulate-days": (
        "evals.simulate_days",
        "daily cycles on a copy of the demo world: a candidate ramps, the gate decides",
    ),
}
ACTIVATION = "activation.cli"


def _entry(module: str) -> Callable[..., int]:
    main: Callable[..., int] = importlib.import_module(module).main
    return main


def _activation_commands() -> list[tuple[str, str]]:
    """(name, first line of help) of every activation command, read from its typer app."""
    import typer

    app = importlib.import_module(ACTIVATION).app
    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {})
    return [
        (name, (cmd.help or "").strip().splitlines()[0] if cmd.help else "") for name, cmd in commands.items()
    ]


def usage() -> str:
    lines = ["usage: nba [--version] [--help] COMMAND [ARGS]...", "", "Decide and send (nba COMMAND --help):"]
    lines += [f"  {name:<18} {text}" for name, text in _activation_commands()]
    lines += ["", "Command groups (nba GROUP --help):"]
    lines += [f"  {name:<18} {text}" for name, (_, text) in GROUPS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "--version":
        print(package_version())
        return 0
    word = args[0]
    if word in GROUPS:
        return _entry(GROUPS[word][0])(args[1:], prog=f"nba {word}")
    return _entry(ACTIVATION)(args, prog="nba")


if __name__ == "__main__":
    sys.exit(main())

"""What every command-line entry point shares: typer options whose defaults and validation come
from the settings model (one owner per setting), and a runner that turns any error into one line.

A flag's value reaches the settings model as given (a string) and is validated there, so a bad
value gets the same one-line message whether it came from a flag, a make variable or an `NBA_*`
variable. Exit codes: 0 success, 1 a failed run, 2 bad input (a usage error or an invalid setting),
130 interrupted; a command may return others (documented with it).
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import duckdb
import typer

try:  # typer >= 0.29 runs on its own copy of click: its exceptions are the ones raised
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # older typer: click itself
    from click.exceptions import NoArgsIsHelpError, UsageError  # type: ignore[assignment]
from pydantic import BaseModel

from core.errors import NBAError


def new_app(name: str, help: str | None = None, *, subcommands: bool = False) -> typer.Typer:
    """A CLI of this project: plain text (no rich markup or tracebacks: `run` turns an error into one
    line), no shell completion; with subcommands, no arguments prints the help."""
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=subcommands,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


def package_version() -> str:
    try:
        return version("activate-nba")
    except PackageNotFoundError:
        return "0+unknown"


def choices(model: type[BaseModel], field: str) -> str:
    """'rules|llm' for a Literal field (or one checked against a registry), '' otherwise."""
    info = model.model_fields[field]
    named = next((m.choices() for m in info.metadata if hasattr(m, "choices")), None)
    if named is not None:
        return "|".join(named)
    annotation = info.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(str(a) for a in args)
    for a in args:
        if typing.get_origin(a) is typing.Literal:
            return "|".join(str(x) for x in typing.get_args(a))
    return ""


def setting(model: type[BaseModel], field: str, help: str, *names: str, metavar: str | None = None) -> Any:
    """A typer option for settings field `field`: not given (None) unless passed, its help showing
    the model's default, its metavar the valid values."""
    default = model.model_fields[field].get_default(call_default_factory=True)
    shown = (
        "none" if default is None else ("on" if default is True else "off" if default is False else default)
    )
    return typer.Option(
        *(names or (f"--{field.replace('_', '-')}",)),
        help=f"{help} [default: {shown}]",
        metavar=metavar or choices(model, field) or None,
        show_default=False,
    )


def version_option() -> Any:
    def show(value: bool) -> None:
        if value:
            print(package_version())
            raise typer.Exit()

    return typer.Option("--version", callback=show, is_eager=True, help="Print the version and exit.")


def run(app: typer.Typer, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run a typer app; every error ends as one line on stderr and an exit code."""
    command = typer.main.get_command(app)
    prog = prog or app.info.name or "nba"
    try:
        result = command.main(
            args=list(sys.argv[1:] if argv is None else argv), prog_name=prog, standalone_mode=False
        )
    except NoArgsIsHelpError as exc:  # a bare group: its help is the answer
        print(exc.ctx.get_help() if exc.ctx else "", file=sys.stderr)
        return 2
    except UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx else f"{prog}: "
        print(f"{where}error: {exc.format_message()} (see --help)", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except NBAError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:  # several problems: one line each
            print(f"error: {line}", file=sys.stderr)
        return exc.exit_code
    except duckdb.Error as exc:  # the warehouse file: locked, corrupt, not a database
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: warehouse: {first}", file=sys.stderr)
        return 1
    return int(result or 0)

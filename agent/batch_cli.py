"""`python -m agent.batch_cli`: a plan's LLM requests through Batch API files (make llm-batch-*).

    export --out requests.jsonl          the plan's distinct requests the decision cache cannot answer
                                         (an existing file is refused; --overwrite moves it aside)
    run --file requests.jsonl --out answers.jsonl      the embedded model (or OPENAI_BASE_URL) answers
                                                       them, resumably
    submit --file requests.jsonl --out answers.jsonl   an endpoint's Batch API answers them
    import --file answers.jsonl          the answers into the decision cache; the next plan asks nothing

The plan's settings (SEGMENT, PROMPT_VERSION, GOAL, DISCOUNT_CAP, AS_OF, LIMIT, OPENAI_*, NBA_LLM__*)
come from the NBA_* variables or the flags, as `make plan` reads them; export and import need the same.
Exit codes: 0 done, 1 some requests still unanswered (rerun), 2 bad input.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.batch import BatchSettings
from core.cli import new_app, run, setting, version_option
from core.config import LLMSettings, RunConfig, load_settings
from core.errors import UserError, inline

app = new_app(
    "nba-batch",
    "A plan's LLM requests as OpenAI Batch API files: export, run, submit, import.",
    subcommands=True,
)


B = BatchSettings
Segment = Annotated[str | None, setting(B, "segment", "Who the plan decides for.")]
Prompt = Annotated[
    str | None, setting(B, "prompt_version", "agent/prompts/nba/<version>.", metavar="VERSION")
]
Limit = Annotated[str | None, setting(B, "limit", "Only the first N segmented customers.", metavar="N")]
AsOf = Annotated[
    str | None, setting(B, "as_of", "Decision time, ISO (default: the data's).", metavar="TIMESTAMP")
]


def _path(value: str | None, name: str, example: str) -> Path:
    if not value:
        raise UserError(f"{name}= is required: e.g. make {example}")
    return Path(value)


def _settings(**given: Any) -> BatchSettings:
    return load_settings(BatchSettings, **given)


def _llm() -> LLMSettings:
    return load_settings(RunConfig).llm


def _print(counts: dict[str, int]) -> None:
    print("  ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()), flush=True)


@app.callback()
def _main(version: Annotated[bool, version_option()] = False) -> None:
    """A plan's LLM requests as OpenAI Batch API files."""


@app.command()
def export(
    out: Annotated[str | None, typer.Option(help="Where to write the input JSONL (make: OUT=).")] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Move a file already at OUT aside to <OUT>.replaced-<time> first (OVERWRITE=1); "
            "without it, it is refused."
        ),
    ] = False,
    segment: Segment = None,
    prompt_version: Prompt = None,
    limit: Limit = None,
    as_of: AsOf = None,
) -> int:
    """Write the plan's distinct LLM requests the decision cache cannot answer as a Batch API input file."""
    from agent.batch import export_requests

    path = _path(out, "OUT", "llm-batch-export OUT=batch/requests.jsonl")
    settings = _settings(segment=segment, prompt_version=prompt_version, limit=limit, as_of=as_of)
    counts = export_requests(settings, path, overwrite=overwrite, say=lambda s: print(s, file=sys.stderr))
    _print(counts)
    print(
        f"wrote {inline(path)}: run it (make llm-batch-run FILE={_shell(path)} OUT=...), or on a Batch API",
        file=sys.stderr,
    )
    return 0


@app.command("import")
def import_(
    file: Annotated[str | None, typer.Option(help="A Batch API output file (make: FILE=).")] = None,
    skip_unknown: Annotated[
        bool, typer.Option(help="Import the answers this plan asks for, skipping others (SKIP_UNKNOWN=1).")
    ] = False,
    segment: Segment = None,
    prompt_version: Prompt = None,
    limit: Limit = None,
    as_of: AsOf = None,
) -> int:
    """Validate a Batch API output file's answers and store them in the decision cache."""
    from agent.batch import import_output

    path = _path(file, "FILE", "llm-batch-import FILE=batch/answers.jsonl")
    settings = _settings(segment=segment, prompt_version=prompt_version, limit=limit, as_of=as_of)
    counts = import_output(settings, path, skip_unknown=skip_unknown)
    _print(counts)
    if counts["errors"]:
        print(f"{counts['errors']} requests were not answered: the next plan asks them live", file=sys.stderr)
    return 0


@app.command("run")
def run_(
    file: Annotated[str | None, typer.Option(help="A Batch API input file (make: FILE=).")] = None,
    out: Annotated[str | None, typer.Option(help="The output JSONL, appended to (make: OUT=).")] = None,
) -> int:
    """Answer a Batch API input file with the embedded model (or OPENAI_BASE_URL), resumably."""
    from agent.batch_run import run_file

    src = _path(file, "FILE", "llm-batch-run FILE=batch/requests.jsonl OUT=batch/answers.jsonl")
    dst = _path(out, "OUT", "llm-batch-run FILE=batch/requests.jsonl OUT=batch/answers.jsonl")
    counts = run_file(_llm(), src, dst)
    _print(counts)
    if counts["failed"]:
        print(
            f"{counts['failed']} requests failed (timeout, connection, 429/5xx): rerun to ask them",
            file=sys.stderr,
        )
        return 1
    return 0


@app.command()
def submit(
    file: Annotated[str | None, typer.Option(help="A Batch API input file (make: FILE=).")] = None,
    out: Annotated[str | None, typer.Option(help="Where to write the answers (make: OUT=).")] = None,
    poll_s: Annotated[float, typer.Option(help="Seconds between status checks.")] = 30.0,
    overwrite: Annotated[
        bool, typer.Option(help="Move an existing OUT aside to <OUT>.replaced-<time> first (OVERWRITE=1).")
    ] = False,
) -> int:
    """Upload the file to the endpoint's Batch API, wait for the batch and download its answers."""
    from agent.batch_submit import submit_file

    src = _path(file, "FILE", "llm-batch-submit FILE=batch/requests.jsonl OUT=batch/answers.jsonl")
    dst = _path(out, "OUT", "llm-batch-submit FILE=batch/requests.jsonl OUT=batch/answers.jsonl")
    batch = submit_file(
        _llm(), src, dst, poll_s=poll_s, overwrite=overwrite, say=lambda s: print(s, file=sys.stderr)
    )
    print(
        f"batch {batch.id}: {batch.status}; answers in {inline(dst)}: make llm-batch-import FILE={_shell(dst)}",
        flush=True,
    )
    return 0


def _shell(path: Path) -> str:
    """A path as a command we print writes it: quoted for the shell, so pasting the command runs
    nothing a file name holds (`;`, `$(...)`, quotes, backticks). A name holding a line break or
    another character that does not print is ANSI-C quoted (`$'a\\nb'`, bash and zsh): still one
    line, and still nothing runs (it was shown bare, and pasting that ran what followed a `;`)."""
    text = str(path)
    if text.isprintable():
        return shlex.quote(text)
    return "$'" + "".join(_ansi_c(char) for char in text) + "'"


def _ansi_c(char: str) -> str:
    """One character inside $'...': quote and backslash escaped, what does not print as its code."""
    if char in "\\'":
        return "\\" + char
    if char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that is not UTF-8 (os.fsdecode's surrogate)
        return f"\\x{code - 0xDC00:02x}"
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or (
        f"\\x{code:02x}" if code < 0x80 else f"\\U{code:08x}"
    )


def main(argv: list[str] | None = None, prog: str = "nba-batch") -> int:
    return run(app, argv, prog=prog)


if __name__ == "__main__":
    sys.exit(main())

"""`nba-agent`: prompt iteration commands.

nba-agent prompt --customer-id C0000042 [--prompt-version v2]   show context block + rendered prompt
nba-agent llm-serve [--port 8081]                               serve the embedded model standalone
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from core.cli import new_app, run, setting, version_option
from core.config import EMBEDDED_MODEL, RunConfig, load_settings
from core.errors import UserError
from core.policy_kinds import LLM

if TYPE_CHECKING:
    import duckdb

    from core.contracts import CustomerContext

app = new_app("nba-agent", "Prompt iteration for the next-best-action agent.", subcommands=True)
R = RunConfig


@app.callback()
def _main(version: Annotated[bool, version_option()] = False) -> None:
    """Prompt iteration for the next-best-action agent."""


@app.command()
def prompt(
    customer_id: Annotated[
        str | None, typer.Option(help="The customer to show (make: CUSTOMER_ID=...).")
    ] = None,
    prompt_version: Annotated[
        str | None, setting(R, "prompt_version", "agent/prompts/nba/<version>.", metavar="VERSION")
    ] = None,
    goal: Annotated[str | None, setting(R, "goal", "What the policy optimises.")] = None,
    discount_cap: Annotated[
        str | None, setting(R, "discount_cap", "No decision offers more (percent).", metavar="0-100")
    ] = None,
    as_of: Annotated[
        str | None,
        setting(
            R, "as_of", "Decision time, ISO (default: the data's as_of date, 14:00 UTC).", metavar="TIMESTAMP"
        ),
    ] = None,
) -> int:
    """Show the context block and the rendered prompt for one customer."""
    from agent.context import open_warehouse

    if not customer_id:
        raise UserError(
            "CUSTOMER_ID= / --customer-id: which customer? e.g. make prompt CUSTOMER_ID=C0000042 "
            "(any id from mart_marketing__segment_scores where segment is not null)"
        )
    settings = load_settings(
        RunConfig,
        prompt_version=prompt_version,
        goal=goal,
        discount_cap=discount_cap,
        as_of=as_of,
        mode=LLM.name,
    )
    with open_warehouse() as con:
        _show_prompt(settings, con, _segmented_customer(con, customer_id))
    return 0


def _segmented_customer(con: duckdb.DuckDBPyConnection, customer_id: str) -> CustomerContext:
    from agent.context import load_contexts
    from agent.errors import UnknownCustomerError

    contexts = load_contexts(con, customer_ids=[customer_id])
    if not contexts:
        raise UnknownCustomerError(
            f"CUSTOMER_ID= / --customer-id: customer {customer_id!r} is in no segment (or does not exist): pick one from "
            "mart_marketing__segment_scores where segment is not null"
        )
    return contexts[0]


def _show_prompt(settings: RunConfig, con: duckdb.DuckDBPyConnection, ctx: CustomerContext) -> None:
    """Print the customer's context block, its hash and eligibility, and the rendered prompts."""
    from agent.pipeline import customer_prompt

    elig, rendered = customer_prompt(settings, con, ctx, run_id="prompt")
    print("# context block (CustomerContext)")
    print(json.dumps(ctx.model_dump(mode="json"), indent=2, ensure_ascii=False))
    print(f"# context hash: {ctx.context_hash()}   eligibility: {elig.status} {elig.reasons}")
    print(f"\n# system prompt (agent/prompts/nba/{settings.prompt_version}/system.j2)\n{rendered.system}")
    print(f"\n# user prompt (agent/prompts/nba/{settings.prompt_version}/user.j2)\n{rendered.user}")


@app.command("llm-prepare")
def llm_prepare() -> int:
    """Do everything the embedded model's first use needs (build llama-server, fetch and convert the
    model), with progress, so the next run starts it in seconds."""
    from agent import local_llm

    t0 = time.monotonic()
    model = local_llm.prepare(load_settings(RunConfig).llm)
    print(f"embedded model ready to serve in {time.monotonic() - t0:.1f}s: {model}", flush=True)
    return 0


@app.command("llm-serve")
def llm_serve(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8081) -> int:
    """Serve the embedded model standalone (for prompt work)."""
    from agent import local_llm

    with local_llm.serve(load_settings(RunConfig).llm, port=port, quiet=False) as url:
        print(f"embedded model ready: OPENAI_BASE_URL={url} OPENAI_MODEL={EMBEDDED_MODEL}", flush=True)
        print("Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: list[str] | None = None, prog: str = "nba-agent") -> int:
    return run(app, argv, prog=prog)


if __name__ == "__main__":
    sys.exit(main())

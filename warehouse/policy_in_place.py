"""The policy in place, read from the run history: the policy that decides for everyone today.

The promotion gate screens and ramps a candidate against it, and the eval compares a candidate with
it by default. It lives here, beside the ops tables it reads, so both can ask the same question.
"""

from __future__ import annotations

import json

import duckdb

from core.policy_kinds import fallback, parse_identity


def policy_in_place(con: duckdb.DuckDBPyConnection) -> str:
    """The identity of the policy in place: the latest of the last live run that delivered (not a
    ramp's) and the last promoted candidate; `rules` when there is neither."""
    rows = con.execute(
        "select started_at, summary_json from ops.run_log where not dry_run and status in ('completed', 'partial') "
        "order by started_at desc limit 20"
    ).fetchall()
    live = next(
        (
            (at, str(ident))
            for at, raw in rows
            if (ident := json.loads(raw or "{}").get("policy_identity"))
            and not str(ident).startswith("ramp:")
        ),
        None,
    )
    promoted = con.execute(
        "select updated_at, candidate from ops.ramps where state = 'promoted' order by updated_at desc limit 1"
    ).fetchone()
    if promoted and (live is None or promoted[0] >= live[0].replace(tzinfo=None)):
        return str(promoted[1])
    return live[1] if live else fallback().name


def baseline_name(identity: str) -> str:
    """The eval's baseline name for a policy identity: its kind (rules, learned, ...), or its prompt
    version for an LLM prompt (`llm:v3@model` -> `v3`); the fallback's name for one not rebuildable."""
    kind, version = parse_identity(identity)
    if kind is not None and kind.prompted and version:
        return version
    if kind is None or not kind.baseline:
        return fallback().name
    return kind.name

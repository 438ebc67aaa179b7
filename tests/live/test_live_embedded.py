"""Live: the real embedded model (SmolLM2-135M, BF16 or F16 by CPU, on llama.cpp's llama-server, built on first use and
started by the run itself), end to end on a handful of real warehouse customers. Asserts the product's promises, not the model's words: every
decision schema-valid, every guardrail invariant holding, the run completing, failures visible as
fallbacks with reasons. Run with `make test-live` (also in .ci/run)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from activation.run import run_activation
from activation.settings import ActivateSettings
from agent.context import load_contact_history, load_contexts, reference_for
from core.config import RunConfig, load_settings
from core.contracts import Decision, GuardrailSettings
from core.reference import load_reference
from testing.invariants import violations

pytestmark = pytest.mark.live

SAMPLE = 6


def test_live_llm_dry_run_on_embedded_model(warehouse_copy, tmp_path) -> None:
    settings = load_settings(ActivateSettings, mode="llm", limit=SAMPLE)
    assert settings.llm.embedded, "no OPENAI_* variables: the run must serve the embedded model itself"
    assert (
        settings.llm.resolved_instructor_mode == "json_schema"
        and settings.llm.concurrency == settings.llm.slots
    )
    summary = run_activation(settings)
    assert summary.decisions == SAMPLE
    assert summary.llm_calls >= 1, "the embedded model was really called"
    assert summary.outbox and (tmp_path / "nba_outbox_dir").exists()

    con = duckdb.connect(str(warehouse_copy))
    rows = con.execute(
        "select * from ops.decision_log where run_id = ? order by customer_id", [summary.run_id]
    ).fetchall()
    cols = [d[0] for d in con.description]
    assert len(rows) == SAMPLE
    contexts = {c.customer_id: c for c in load_contexts(con)}
    history = load_contact_history(con)
    ref = reference_for(con)
    guard = GuardrailSettings(discount_cap=5.0, suppress_hours=24.0)
    policies = Counter()
    for row in rows:
        r = dict(zip(cols, row, strict=True))
        decision = Decision.model_validate(
            {
                "decision_id": r["decision_id"],
                "run_id": r["run_id"],
                "as_of": summary.as_of,
                "customer_id": r["customer_id"],
                "segment": r["segment"],
                "goal": r["goal"],
                "arm": r["arm"],
                "status": r["status"],
                "reasons": json.loads(r["reasons"]),
                "channel": r["channel"],
                "template_id": r["template_id"],
                "discount_pct": r["discount_pct"],
                "subject": r["subject"],
                "message": r["message"],
                "policy": r["policy"],
                "model": r["model"],
                "prompt_version": r["prompt_version"],
                "context_hash": r["context_hash"],
                "fallback_reason": r["fallback_reason"],
                "defer_until": r["defer_until"].isoformat() + "+00:00" if r["defer_until"] else None,
            }
        )
        ctx = contexts[decision.customer_id]
        assert decision.context_hash == ctx.context_hash()
        problems = violations(
            decision, ctx, history.get(ctx.customer_id, []), as_of=decision.as_of, settings=guard, ref=ref
        )
        assert problems == [], (decision.customer_id, problems)
        assert decision.discount_pct <= 5.0
        if decision.policy == "llm->rules":
            assert decision.fallback_reason, "every fallback carries its reason"
        policies[decision.policy] += 1
    # The weak model's failures are visible in the summary, not hidden.
    assert sum(summary.fallbacks.values()) == policies["llm->rules"]


def test_live_llama_server_slots_and_prefix_reuse() -> None:
    """The embedded server is llama-server with the configured slots, and a second customer of the same
    segment reuses the first one's prompt prefix (the shared instructions and actions) from the cache."""
    import httpx

    from agent import local_llm
    from agent.llm import response_model_for
    from agent.prompts import render_prompt

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
    from agent_cases import CASES

    settings = load_settings(RunConfig).llm
    ref = load_reference()
    a = CASES["hvl_normal"]
    # another situation (inactive this month), so its prompt differs after the shared prefix
    b = a.model_copy(update={"customer_id": "C2", "first_name": "Noah", "sessions_7d": 0, "sessions_30d": 0})
    rm = response_model_for(a.segment, ref)
    with local_llm.serve(settings) as url:
        props = httpx.get(url.removesuffix("/v1") + "/props", timeout=10).json()
        assert props["total_slots"] == settings.slots
        timings = []
        for ctx in (a, b):
            p = render_prompt(
                ctx,
                version="v1",
                ref=ref,
                allowed_channels=["email", "sms", "push"],
                goal="90d_clv",
                discount_cap=5.0,
            )
            body = {
                "model": settings.model,
                "messages": p.messages(),
                "max_tokens": settings.max_tokens,
                "temperature": 0.2,
                "seed": 7,
                "id_slot": 0,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": rm.__name__, "schema": rm.model_json_schema()},
                },
            }
            r = httpx.post(f"{url}/chat/completions", json=body, timeout=180)
            r.raise_for_status()
            rm.model_validate_json(r.json()["choices"][0]["message"]["content"])  # the grammar held
            timings.append(r.json()["timings"])
    assert timings[0]["cache_n"] == 0
    # everything up to the customer's data came from the cache: at least the system message
    assert timings[1]["cache_n"] >= 0.6 * (timings[1]["cache_n"] + timings[1]["prompt_n"]), timings

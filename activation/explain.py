"""`explain`: one customer's decision, end to end, in words.

Read from the ops tables, not recomputed: the latest logged decision for the customer (or the one of
`--run-id`) with its guardrail report (ops.decision_log), the run's settings (ops.run_log), the
deliveries (ops.delivery_state, ops.delivery_log) and, for a plan, the planned operation per
destination (outbox/<run_id>/plan.jsonl). The customer's segment and context come from the marts as
they are now (the context hash says whether they changed since the decision). A customer no run has
decided for yet is decided now, through the one pipeline, and nothing is logged.

Sections: segment and why, eligibility verdicts, the policy's proposal, every guardrail step with
its before / after, the final decision, its deliveries; the LLM prompt on request (`--prompt`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from activation.reasons import checks_of, why_not_sent
from activation.settings import ActivateSettings
from agent.context import data_as_of, load_contact_history, load_contexts, reference_for
from agent.pipeline import Pipeline, customer_prompt
from core.contracts import SEGMENTS, ContactEvent, CustomerContext, GuardrailCheck, GuardrailSettings
from core.errors import UserError, inline
from core.policy_kinds import LLM
from guardrails.checks import Setting, describe, is_eligibility
from guardrails.checks.words import utc, when
from warehouse import paths

_DECISION_SQL = """
select d.*, r.started_at as run_started_at, r.summary_json
from ops.decision_log d left join ops.run_log r on r.run_id = d.run_id
where d.customer_id = ? {filter}
order by coalesce(r.started_at, d.as_of) desc, d.dry_run
limit 1
"""


class UnknownCustomer(UserError):
    """No such customer, or no decision for them in the run asked for."""


def _segment(con: duckdb.DuckDBPyConnection, customer_id: str) -> dict[str, Any]:
    row = con.execute(
        "select c.customer_id, c.country, c.timezone, s.segment, s.segment_reason, "
        "s.score_high_value_lapse_risk, s.score_new_users_first_week_intent, s.score_churn_rescue_nps "
        "from main.mart_marketing__customer_360 c left join main.mart_marketing__segment_scores s "
        "using (customer_id) where c.customer_id = ?",
        [customer_id],
    ).fetchone()
    if row is None:
        raise UnknownCustomer(
            f"CUSTOMER_ID= / --customer-id: no customer {customer_id!r} in mart_marketing__customer_360 "
            "(ids look like C0000042; make plan lists decided customers in outbox/<run_id>/plan.txt)"
        )
    _, country, tz, segment, reason, *scores = row
    return {
        "segment": segment,
        "why": reason or "no segment rule applies today",
        "scores": {s: round(float(v or 0), 3) for s, v in zip(SEGMENTS, scores, strict=True)},
        "country": country,
        "timezone": tz,
    }


def _logged(con: duckdb.DuckDBPyConnection, customer_id: str, run_id: str | None) -> dict[str, Any] | None:
    sql = _DECISION_SQL.format(filter="and d.run_id = ?" if run_id else "")
    cur = con.execute(sql, [customer_id, run_id] if run_id else [customer_id])
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([c[0] for c in cur.description], row, strict=True))


def _latest_run(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute(  # the latest run that decided (a run stopped before deciding logged none)
        "select run_id from ops.run_log r where exists (select 1 from ops.decision_log d where d.run_id = r.run_id) "
        "order by started_at desc limit 1"
    ).fetchone()
    return row[0] if row else None


def _deliveries(con: duckdb.DuckDBPyConnection, decision_id: str, customer_id: str) -> dict[str, Any]:
    state = con.execute(
        "select destination, status, attempts, delivered_at, last_error, first_run_id, last_run_id "
        "from ops.delivery_state where decision_id = ? order by destination",
        [decision_id],
    ).fetchall()
    log = con.execute(
        'select destination, status, count(*), max("at") from ops.delivery_log where decision_id = ? '
        "group by all order by 1, 2",
        [decision_id],
    ).fetchall()
    others = con.execute(
        "select destination, decision_id, status, first_run_id from ops.delivery_state "
        "where customer_id = ? and decision_id <> ? and status in ('pending', 'failed') order by 1",
        [customer_id, decision_id],
    ).fetchall()
    return {
        "state": [
            {
                "destination": d,
                "status": s,
                "attempts": a,
                "delivered_at": when(utc(at)) if at else None,
                "last_error": e,
                "first_run_id": f,
                "last_run_id": last,
            }
            for d, s, a, at, e, f, last in state
        ],  # fmt: skip
        "log": [{"destination": d, "status": s, "rows": n, "last_at": when(utc(at))} for d, s, n, at in log],
        "owed_by_other_decisions": [
            {"destination": d, "decision_id": did, "status": s, "run_id": r} for d, did, s, r in others
        ],
    }


def _planned(run_id: str, customer_id: str) -> dict[str, Any] | None:
    path = paths.outbox_dir() / run_id / "plan.jsonl"
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if f'"customer_id": "{customer_id}"' in line:
                row = json.loads(line)
                if row.get("customer_id") == customer_id and "decision" in row:
                    return dict(row.get("destinations") or {})
    return None


def _proposal(d: Mapping[str, Any], checks: Sequence[GuardrailCheck]) -> dict[str, Any]:
    """What the policy proposed, from the first vetting of the report (before any fallback)."""
    bank = next((c for c in checks if c.name == "action_bank"), None)
    clamp = next((c for c in checks if c.name == "discount_clamp"), None)
    draft = next((c for c in checks if c.name == "message" and c.verdict == "failed"), None)
    missing = next((c for c in checks if c.name == "proposal"), None)
    fallback = next((c for c in checks if c.name == "fallback"), None)
    pair = bank.before if bank and isinstance(bank.before, list) else [None, None]
    policy = str(d.get("policy") or "")
    return {
        "policy": policy.split("->")[0],
        "model": d.get("model"),
        "prompt_version": d.get("prompt_version"),
        "asked": any(not is_eligibility(c.name) for c in checks),
        "channel": pair[0] if pair else None,
        "template_id": pair[1] if len(pair) > 1 else None,
        "discount_pct": clamp.before if clamp else d.get("proposed_discount_pct"),
        "refused_draft": draft.before if draft else None,
        "no_proposal": missing.reason if missing else None,
        "fell_back_to_rules": fallback.reason if fallback else None,
        "propensity": d.get("propensity"),
    }


def _decide_now(
    con: duckdb.DuckDBPyConnection, settings: ActivateSettings, ctx: CustomerContext, as_of: datetime
) -> dict[str, Any]:
    """No run decided for this customer yet: decide through the pipeline (nothing is logged)."""
    history = load_contact_history(con, since=as_of - timedelta(hours=max(settings.suppress_hours, 24 * 7)))
    pipe = Pipeline.from_config(settings, run_id="explain", as_of=as_of, ref=reference_for(con), con=con)
    (decision, report), *_ = pipe.decide([ctx], history)
    row = decision.model_dump()
    row["guardrail_report"] = [c.model_dump(mode="json") for c in report.checks]
    row["dry_run"], row["run_started_at"], row["summary_json"] = True, None, None
    return row


def explain(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    *,
    settings: ActivateSettings,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Everything `explain` prints, as one dict (also the `--output json`)."""
    seg = _segment(con, customer_id)
    out: dict[str, Any] = {"customer_id": customer_id, "segment": seg}
    row = _logged(con, customer_id, run_id)
    if row is None and run_id:
        raise UnknownCustomer(
            f"run {inline(run_id)} has no decision for {customer_id}: leave out RUN_ID= for the latest"
        )
    contexts = load_contexts(con, customer_ids=[customer_id]) if seg["segment"] else []
    ctx = contexts[0] if contexts else None
    row, out["source"] = _source(con, customer_id, row, run_id, settings, ctx)
    if row is None:
        return out
    run = json.loads(row.get("summary_json") or "{}")
    as_of = utc(row["as_of"]) or datetime.now(UTC)
    history: Sequence[ContactEvent] = []
    if ctx is not None:
        history = load_contact_history(con, since=as_of - timedelta(days=8)).get(customer_id, [])

    words = Setting(
        as_of=as_of,
        guard=_run_guardrails(run, settings),
        segment=str(row["segment"]),
        ref=reference_for(con),
        ctx=ctx,
        history=history,
    )
    checks = checks_of(row["guardrail_report"])
    status = str(row["status"])
    out["run"] = {
        "run_id": row["run_id"],
        "dry_run": bool(row["dry_run"]),
        "as_of": when(as_of),
        "policy_identity": run.get("policy_identity"),
        "context_unchanged": (ctx.context_hash() == row["context_hash"]) if ctx else None,
    }
    out["eligibility"] = [_step(c, words) for c in checks if is_eligibility(c.name)]
    out["proposal"] = _proposal(row, checks)
    out["guardrails"] = [_step(c, words) for c in checks if not is_eligibility(c.name)]
    out["decision"] = _decision(row, checks, why_not_sent(status, checks, words))
    out["deliveries"] = _deliveries(con, str(row["decision_id"]), customer_id)
    if row["dry_run"] and row["run_id"] != "explain":
        out["deliveries"]["planned"] = _planned(str(row["run_id"]), customer_id)
    return out


def _run_guardrails(run: Mapping[str, Any], settings: ActivateSettings) -> GuardrailSettings:
    """What the run's guardrails enforced, from its summary; the settings' for what it does not say
    (a decision made now, or a run logged before the summary carried them as one object)."""
    logged = run.get("guardrails") or run
    given = {k: logged[k] for k in GuardrailSettings.model_fields if logged.get(k) is not None}
    return settings.guardrails(**given)


def _source(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    row: dict[str, Any] | None,
    run_id: str | None,
    settings: ActivateSettings,
    ctx: CustomerContext | None,
) -> tuple[dict[str, Any] | None, str]:
    """The decision to explain (the logged one, or one decided now when no run decided for this
    customer) and where it comes from, in words; no decision for a customer in no segment."""
    if row is None:
        if ctx is None:
            return None, "in no segment: no run decides for this customer until a segment rule applies"
        row = _decide_now(con, settings, ctx, settings.as_of or data_as_of(con))
        return (
            row,
            f"no run has decided for {customer_id} yet: decided now with MODE={settings.mode} (not logged)",
        )
    kind = "plan (dry run)" if row["dry_run"] else "live run"
    source = f"{kind} {row['run_id']}"
    latest = _latest_run(con)
    if not run_id and latest and latest != row["run_id"]:
        source += f" (the latest run, {latest}, did not decide for this customer)"
    return row, source


def _decision(row: Mapping[str, Any], checks: Sequence[GuardrailCheck], why: str) -> dict[str, Any]:
    """The final decision as explained: what it does and why (`why`: '' for a send)."""
    reasons = row["reasons"]
    return {
        "decision_id": row["decision_id"],
        "status": str(row["status"]),
        "why": why or _sent(checks, bool(row["dry_run"])),
        "channel": row["channel"],
        "template_id": row["template_id"],
        "discount_pct": row["discount_pct"],
        "subject": row["subject"],
        "message": row["message"],
        "defer_until": when(utc(row["defer_until"])) if row.get("defer_until") else None,
        "policy": row["policy"],
        "reasons": json.loads(reasons) if isinstance(reasons, str) else list(reasons or []),
    }


def _sent(checks: Sequence[GuardrailCheck], dry_run: bool) -> str:
    fixed = [c.name for c in checks if c.verdict == "fixed"]
    how = f"passed every check after fixes ({', '.join(fixed)})" if fixed else "passed every check"
    return how + ("; planned: sent by apply of this plan" if dry_run else "")


def _step(c: GuardrailCheck, words: Setting) -> dict[str, Any]:
    return {"check": c.name, "verdict": c.verdict, "before": c.before, "after": c.after, "reason": c.reason,
            "words": describe(c, words)}  # fmt: skip


def rendered_prompt(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    *,
    settings: ActivateSettings,
    prompt_version: str | None,
) -> dict[str, str]:
    """The LLM prompt for this customer (the decision's prompt version, else PROMPT_VERSION), rendered
    from today's context: what the model sees (or would see, if the customer were eligible)."""
    from core.config import settings_from

    contexts = load_contexts(con, customer_ids=[customer_id])
    if not contexts:
        raise UnknownCustomer(f"{customer_id} is in no segment: there is no prompt to render")
    ctx = contexts[0]
    values = settings.model_dump(include={"goal", "discount_cap", "suppress_hours", "global_holdout_pct",
                                          "segment_holdout_pct", "as_of"})  # fmt: skip
    llm = settings_from(
        ActivateSettings, **values, mode=LLM.name, prompt_version=prompt_version or settings.prompt_version
    )
    elig, rendered = customer_prompt(llm, con, ctx, run_id="explain")
    return {"version": llm.prompt_version, "eligibility": elig.status, "system": rendered.system,
            "user": rendered.user}  # fmt: skip

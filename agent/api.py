"""The documented Python API: `next_best_action`, the action the pipeline would take for a typical
customer of a segment (or one described by keyword arguments), through every guardrail.

    >>> next_best_action("high_value_lapse_risk", goal="90d_clv", discount_cap=5.0)["template"]
    'winback_soft'
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from agent.pipeline import decide
from core.config import RunConfig, default, settings_from
from core.contracts import SEGMENTS, CustomerContext
from core.errors import UserError
from core.policy_kinds import kind
from core.reference import ReferenceData, load_reference

_TYPICAL_FILE = Path(__file__).resolve().parent / "data" / "typical_customers.json"


@lru_cache(maxsize=1)
def _typical() -> dict[str, Any]:
    """agent/data/typical_customers.json: the profile of a typical customer of each segment."""
    return dict(json.loads(_TYPICAL_FILE.read_text(encoding="utf-8")))


def typical_context(segment: str, **overrides: Any) -> CustomerContext:
    """A typical customer of a segment, consenting on every channel, preferring email."""
    if segment not in SEGMENTS:
        raise UserError(f"unknown segment {segment!r}; valid segments: {', '.join(SEGMENTS)}")
    typical = _typical()
    base: dict[str, Any] = {
        "customer_id": f"typical-{segment}",
        "segment": segment,
        "scores": {s: float(s == segment) for s in SEGMENTS},
        **typical["common"],
        **typical["segments"][segment],
    }
    return CustomerContext.model_validate(base | overrides)


_API_ARGS = ("as_of", "ref", "enforce_quiet_hours", "mode", "prompt_version", "customer_id")


def next_best_action(
    segment: str | None = None,
    goal: str = default("goal"),
    discount_cap: float = default("discount_cap"),
    suppress_hours: float = default("suppress_hours"),
    **kwargs: Any,
) -> dict[str, Any]:
    """The next-best action, through every guardrail, for a typical customer of `segment`, or for
    the warehouse's customer `customer_id`.

    Keyword arguments override the typical customer's fields (e.g. `preferred_channel="sms"`,
    `consent={"email": False, "sms": True, "push": True}`), or pass `as_of` (default: now, UTC; the
    data's as-of date for a warehouse customer), `mode` (rules, learned, llm; default rules),
    `prompt_version`, `enforce_quiet_hours` or `ref`. `mode="learned"` scores a customer's own
    response history, so it needs `customer_id` (the warehouse at NBA_DUCKDB_PATH). Holdout is off
    here: this describes the action, not the arm. The settings are validated by the run
    configuration (no environment variable is read). Returns channel, template, discount_pct,
    subject, message, rationale, status, reasons, policy, model, propensity, defer_until. Raises
    UserError (a ValueError) naming the valid values.
    """
    customer_id = kwargs.pop("customer_id", None)
    as_of = kwargs.pop("as_of", None)
    ref: ReferenceData | None = kwargs.pop("ref", None)
    run = {k: kwargs.pop(k) for k in ("enforce_quiet_hours", "mode", "prompt_version") if k in kwargs}
    unknown = set(kwargs) - set(CustomerContext.model_fields)
    if unknown:
        valid = sorted({*_API_ARGS, *CustomerContext.model_fields})
        raise UserError(f"unknown argument(s) {sorted(unknown)}; valid: {', '.join(valid)}")
    if customer_id is None:
        if segment is None:
            raise UserError(
                "give a segment (a typical customer of it) or customer_id= (a warehouse customer)"
            )
        if "mode" in run and kind(run["mode"]).learns_from_log:
            raise UserError(
                f"mode={run['mode']!r} scores a customer's own response history: pass customer_id= (a warehouse customer)"
            )
        ctx = typical_context(segment, **kwargs)
        config = _config(ctx.segment, goal, discount_cap, suppress_hours, run)
        decided, _ = decide(
            [ctx], {}, config, run_id="api", as_of=as_of or datetime.now(UTC), ref=ref or load_reference()
        )
        return _result(decided[0][0])
    return _for_customer(customer_id, goal, discount_cap, suppress_hours, run, as_of, kwargs)


def _config(segment: str, goal: str, cap: float, hours: float, run: dict[str, Any]) -> RunConfig:
    return settings_from(
        RunConfig,
        segment=segment,
        goal=goal,
        discount_cap=cap,
        suppress_hours=hours,
        global_holdout_pct=0,
        segment_holdout_pct=0,
        **run,
    )


def _for_customer(
    customer_id: str,
    goal: str,
    cap: float,
    hours: float,
    run: dict[str, Any],
    as_of: datetime | None,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    from agent.context import data_as_of, load_contact_history, load_contexts, open_warehouse, reference_for
    from agent.errors import UnknownCustomerError

    with open_warehouse() as con:
        found = load_contexts(con, customer_ids=[customer_id])
        if not found:
            raise UnknownCustomerError(f"customer {customer_id!r} is in no segment (or does not exist)")
        ctx = CustomerContext.model_validate(found[0].model_dump() | overrides) if overrides else found[0]
        config = _config(ctx.segment, goal, cap, hours, run)
        decided, _ = decide(
            [ctx],
            load_contact_history(con),
            config,
            run_id="api",
            as_of=as_of or data_as_of(con),
            ref=reference_for(con),
            con=con,
        )
    return _result(decided[0][0])


def _result(decision: Any) -> dict[str, Any]:
    return {
        "channel": decision.channel,
        "template": decision.template_id,
        "discount_pct": decision.discount_pct,
        "subject": decision.subject,
        "message": decision.message,
        "rationale": decision.rationale,
        "status": decision.status,
        "reasons": decision.reasons,
        "policy": decision.policy,
        "model": decision.model,
        "propensity": decision.propensity,
        "defer_until": decision.defer_until,
    }

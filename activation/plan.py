"""The plan: what a dry run would send, row by row, and the warehouse state it was built on.

A dry run (`make plan`, `nba-activate plan`) writes, beside the outbox files of `outbox/<run_id>/`:

- `plan.jsonl`: one line per decided customer: status, action, why it is not sent (in words, from
  the guardrail report), and per destination the operation (`create`: the destination has no record
  of ours for it; `update`, with a field-level diff against the payload last delivered for that
  record, from ops.delivery_state; `unchanged`; `held`; `conflict`), plus the decision and its checks
  (what `apply` sends, and logs). Rows owed by earlier runs (re-sent first) are lines with op `retry`.
- `plan.txt`: the same, for a person (one customer per paragraph).
- `plan.json`, written last (its presence marks a complete plan): the fingerprint of the warehouse
  state the plan depends on (marts' content, contact ledger and delivery state high-water marks,
  reference data hash), the destinations, the settings, counts, and the sha256 of `plan.jsonl`.

The per-destination operations are read back from what the delivery engine planned for this run
(ops.delivery_log, attempt 0) and from the outbox files it wrote: the plan is the engine's, in words.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from activation.gate import RAMP_FIRST, PromotionRefused, check_promotion, measured_against_rules
from activation.reasons import deciding_check, why_not_sent
from activation.settings import ActivateSettings
from activation.summary import RunSummary
from core.contracts import ContactEvent, CustomerContext, Decision, GuardrailReport, GuardrailSettings
from core.policy_kinds import parse_identity
from core.reference import ReferenceData
from guardrails.checks import Setting, describe, label
from guardrails.checks.words import when

PLAN_HEADER, PLAN_ROWS, PLAN_TEXT = "plan.json", "plan.jsonl", "plan.txt"
_ID_FIELDS = ("decision_id", "decided_at", "objectwritetraceid")


# --- payload diffs ---------------------------------------------------------------------------


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{'properties': {'a': 1}} -> {'properties.a': 1}; `attributes` (type tags) left out."""
    if not isinstance(value, dict):
        return {prefix: value} if prefix else {}
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key == "attributes":
            continue
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(v, dict):
            out.update(flatten(v, name))
        else:
            out[name] = v
    return out


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Field -> [before, after] for every field that differs (payloads flattened)."""
    a, b = flatten(dict(old)), flatten(dict(new))
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def is_id_field(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1].lower()
    return any(tag in leaf for tag in _ID_FIELDS) or leaf == "as_of"


def _short(v: Any, width: int = 28) -> str:
    text = "none" if v is None or v == "" else str(v)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_changes(changes: Mapping[str, Sequence[Any]], limit: int = 3) -> str:
    """'nba_template_id winback_soft -> winback_vip; ... (+ new decision id)'."""
    real = [(k, v) for k, v in changes.items() if not is_id_field(k)]
    parts = [f"{k.rsplit('.', 1)[-1]} {_short(v[0])} -> {_short(v[1])}" for k, v in real[:limit]]
    if len(real) > limit:
        parts.append(f"+{len(real) - limit} more")
    if len(real) < len(changes):
        parts.append("new decision id" if real else "only the decision id and time")
    return "; ".join(parts)


# --- building the plan -------------------------------------------------------------------------


def _outbox_items(run_dir: Path, destination: str) -> dict[str, dict[str, Any]]:
    path = run_dir / f"{destination}.jsonl"
    if not path.exists():
        return {}
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {line["decision_id"]: line for line in lines}


def _last_delivered(
    con: duckdb.DuckDBPyConnection, destination: str, record_keys: Sequence[str]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """record key -> (payload hash, payload) of the latest delivered row of `destination`."""
    if not record_keys:
        return {}
    con.register("_nba_keys", pa.table({"record_key": pa.array(list(record_keys), pa.string())}))
    try:
        rows = con.execute(
            "select record_key, payload_hash, item_json from ops.delivery_state where destination = ? "
            "and status = 'delivered' and record_key in (select record_key from _nba_keys) "
            "order by delivered_at",
            [destination],
        ).fetchall()
    finally:
        con.unregister("_nba_keys")
    return {key: (h, json.loads(item).get("payload", {})) for key, h, item in rows}


def destination_ops(
    con: duckdb.DuckDBPyConnection, run_dir: Path, run_id: str, destinations: Sequence[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """decision id -> destination -> {op, payload_hash, changes, why}, from the engine's plan."""
    logged = con.execute(
        "select destination, decision_id, status, payload_hash, error from ops.delivery_log "
        "where run_id = ? and attempt = 0",
        [run_id],
    ).fetchall()
    owed = set(
        con.execute(
            "select destination, decision_id from ops.delivery_state where status in ('pending', 'failed')"
        ).fetchall()
    )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for dest in destinations:
        items = _outbox_items(run_dir, dest)
        last = _last_delivered(con, dest, sorted({it["record_key"] for it in items.values()}))
        for d, decision_id, status, p_hash, error in logged:
            if d != dest:
                continue
            entry: dict[str, Any] = {"op": status, "payload_hash": p_hash}
            if status == "dry_run" and (dest, decision_id) in owed:
                entry["op"] = "retry"  # owed by an earlier live run: re-sent first, with its stored payload
            elif status == "dry_run":
                item = items.get(decision_id, {})
                before = last.get(item.get("record_key", ""))
                entry["op"] = "create" if before is None else "update"
                if before is not None:
                    entry["changes"] = diff(before[1], item.get("payload", {}))
            elif error:
                entry["why"] = error.removeprefix(f"{status}: ")
            out.setdefault(decision_id, {})[dest] = entry
    return out


def plan_rows(
    con: duckdb.DuckDBPyConnection,
    run_dir: Path,
    decided: Sequence[tuple[Decision, GuardrailReport]],
    *,
    guard: GuardrailSettings,
    destinations: Sequence[str],
    ref: ReferenceData,
    contexts: Mapping[str, CustomerContext],
    history: Mapping[str, Sequence[ContactEvent]],
) -> list[dict[str, Any]]:
    """One row per decided customer, then one per decision owed by an earlier run; `guard`: what
    the run's guardrails enforced, which the rows' sentences quote."""
    run_id = decided[0][0].run_id if decided else ""
    ops = destination_ops(con, run_dir, run_id, destinations)
    rows: list[dict[str, Any]] = []
    for d, rep in decided:
        words = Setting(
            as_of=d.as_of,
            guard=guard,
            segment=d.segment,
            ref=ref,
            ctx=contexts.get(d.customer_id),
            history=history.get(d.customer_id, ()),
        )
        deciding = deciding_check(d.status, rep.checks)
        fixes = [describe(c, words) for c in rep.checks if c.verdict == "fixed" and c.name != "quiet_hours"]
        rows.append(
            {
                "customer_id": d.customer_id,
                "segment": d.segment,
                "status": d.status,
                "decision_id": d.decision_id,
                "decided_by": label(deciding),
                "why": why_not_sent(d.status, rep.checks, words),
                "fixes": fixes if d.status == "send" else [],
                "action": _action(d),
                "destinations": ops.pop(d.decision_id, {}),
                "decision": d.model_dump(mode="json"),
                "checks": [c.model_dump(mode="json") for c in rep.checks],
            }
        )
    return rows + _owed_rows(con, ops)


def _action(d: Decision) -> dict[str, Any] | None:
    """What a decision would send, or None when it sends nothing."""
    if not d.channel:
        return None
    return {
        "channel": d.channel,
        "template_id": d.template_id,
        "discount_pct": d.discount_pct,
        "subject": d.subject,
        "message": d.message,
        "defer_until": d.defer_until.isoformat() if d.defer_until else None,
    }


def _owed_rows(con: duckdb.DuckDBPyConnection, ops: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per decision an earlier run still owes a destination: it is re-sent first."""
    rows: list[dict[str, Any]] = []
    for decision_id, by_dest in sorted(ops.items()):  # what is left: rows owed by earlier runs
        owed = con.execute(
            "select customer_id, first_run_id, status, last_error from ops.delivery_state "
            "where decision_id = ? order by destination limit 1",
            [decision_id],
        ).fetchone()
        customer, first_run, status, error = owed or ("", "", "", "")
        why = f"owed by run {first_run} ({status}{': ' + error if error else ''}): re-sent first"
        rows.append(
            {
                "customer_id": customer,
                "status": "owed",
                "decision_id": decision_id,
                "why": why,
                "destinations": by_dest,
            }
        )
    return rows


def plan_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {}
    for row in rows:
        for dest, entry in row.get("destinations", {}).items():
            out.setdefault(dest, Counter())[entry["op"]] += 1
    return {dest: dict(c) for dest, c in sorted(out.items())}


# --- files -------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def plan_text(header: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-record view a reviewer reads (plan.txt)."""
    sends = sum(1 for r in rows if r["status"] == "send")
    lines = [
        f"plan {header['plan']}: {len(rows)} rows, {sends} customers to send "
        f"(as of {when(datetime.fromisoformat(header['as_of']))}, {header['policy_identity']})",
        f"send exactly this plan: make apply PLAN={header['plan']}",
        f"  (valid until {header['valid_until']}, while the warehouse is unchanged)",
        *([f"warning: {header['measured']}"] if header.get("measured") else []),
        "",
    ]
    for r in rows:
        act = r.get("action")
        what = f"  {act['channel']} {act['template_id']} {act['discount_pct']:g}%" if act else ""
        lines.append(f"{r['customer_id']}  {r['status']}  {r.get('segment', '')}{what}".rstrip())
        if r.get("why"):
            lines.append(f"    {r['why']}")
        for fix in r.get("fixes", []):
            lines.append(f"    fixed: {fix}")
        ops = []
        for dest, e in r.get("destinations", {}).items():
            detail = describe_changes(e["changes"]) if e.get("changes") else e.get("why", "")
            ops.append(f"{dest} {e['op']}" + (f": {detail}" if detail else ""))
        if ops:
            joined = " · ".join(ops)
            if len(joined) <= 76 and ":" not in joined:
                lines.append(f"    {joined}")
            else:
                lines.extend(f"    {op}" for op in ops)
    return "\n".join(lines) + "\n"


def write_plan(
    run_dir: Path,
    rows: Sequence[Mapping[str, Any]],
    summary: RunSummary,
    *,
    settings: ActivateSettings,
    fingerprint: Mapping[str, str],
    destinations: Sequence[str],
    gate: str | None,
    measured: str | None = None,
) -> dict[str, Any]:
    """plan.jsonl, plan.txt, then plan.json (last: a plan without it is incomplete). `measured`: what
    the evals found against the rules, when the policy was found worse."""
    created = datetime.now(UTC)
    body = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)
    header: dict[str, Any] = {
        "plan": summary.run_id,
        "created_at": created.isoformat(),
        "max_age_minutes": settings.plan.max_age_minutes,
        "valid_until": when(created + timedelta(minutes=settings.plan.max_age_minutes)),
        "as_of": summary.as_of,
        "policy_identity": summary.policy_identity,
        "settings": {
            "mode": settings.mode,
            "segment": settings.segment,
            "guardrails": summary.guardrails.model_dump(mode="json"),
            "prompt_version": settings.prompt_version,
            "limit": settings.limit,
        },
        "destinations": list(destinations),
        "fingerprint": dict(fingerprint),
        "rows": len(rows),
        "rows_sha256": hashlib.sha256(body.encode()).hexdigest(),
        "counts": summary.counts,
        "plan_counts": plan_counts(rows),
        "promotion_gate": gate,
        "measured": measured,
    }
    _write(run_dir / PLAN_ROWS, body)
    _write(run_dir / PLAN_TEXT, plan_text(header, rows))
    _write(run_dir / PLAN_HEADER, json.dumps(header, indent=2, default=str))
    return header


def plan_guardrails(header: Mapping[str, Any]) -> GuardrailSettings:
    """What the guardrails of the plan's run enforced (a plan written before they were one object
    in its header lists them among its settings)."""
    given = header["settings"]
    return GuardrailSettings.model_validate(
        given.get("guardrails") or {k: given[k] for k in GuardrailSettings.model_fields if k in given}
    )


def gate_preview(con: duckdb.DuckDBPyConnection, identity: str, primary_metric: str) -> str:
    """What the promotion gate would say if this plan were applied now."""
    try:
        gate = check_promotion(con, identity, primary_metric=primary_metric, force=False, preview=True)
        if gate.needs_ramp:
            return f"apply would be refused by the promotion gate: {RAMP_FIRST}; {gate.reason}"
        return gate.summary()
    except PromotionRefused as exc:
        return (
            f"apply would be refused by the promotion gate: {str(exc).removeprefix('refusing to go live: ')}"
        )


def record_plan(
    con: duckdb.DuckDBPyConnection,
    summary: RunSummary,
    decided: Sequence[tuple[Decision, GuardrailReport]],
    *,
    settings: ActivateSettings,
    fingerprint: Mapping[str, str],
    destinations: Sequence[str],
    ref: ReferenceData,
    contexts: Sequence[CustomerContext],
    history: Mapping[str, Sequence[ContactEvent]],
    primary_metric: str,
) -> RunSummary:
    """A dry run's plan files, next to its outbox; the summary learns the plan's counts."""
    if not summary.outbox:
        return summary
    run_dir = Path(summary.outbox)
    rows = plan_rows(
        con,
        run_dir,
        decided,
        guard=summary.guardrails,
        destinations=destinations,
        ref=ref,
        contexts={c.customer_id: c for c in contexts},
        history=history,
    )
    gate = gate_preview(con, summary.policy_identity or settings.mode, primary_metric)
    measured = measured_against_rules(con, settings.prompt_version) if _prompted(settings.mode) else None
    header = write_plan(
        run_dir,
        rows,
        summary,
        settings=settings,
        fingerprint=fingerprint,
        destinations=destinations,
        gate=gate,
        measured=measured,
    )
    summary.plan = header["plan_counts"]
    summary.plan_file = str(run_dir / PLAN_TEXT)
    summary.plan_valid_until = header["valid_until"]
    if gate.startswith("apply would be refused"):
        summary.notes.append(gate)
    if measured:
        summary.notes.insert(0, f"warning: {measured}")
    return summary


def _prompted(mode: str) -> bool:
    kind = parse_identity(mode)[0]
    return kind is not None and kind.prompted

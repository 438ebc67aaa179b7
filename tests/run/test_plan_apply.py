"""Plan / apply against the local HubSpot, Salesforce and webhook servers over real HTTP: the plan is
per customer and in words, apply sends exactly the planned rows (counted at the servers), and a plan
that is stale, edited, applied already or built on another warehouse state is refused with one line
before anything is sent."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from run_helpers import query, scalar

from activation.apply import PlanRefused, apply_plan
from activation.cli import main as cli
from activation.run import run_activation
from activation.settings import ActivateSettings
from activation.summary import RunSummary
from core.config import load_settings


def plan(**given: object) -> RunSummary:
    return run_activation(load_settings(ActivateSettings, dry_run=True, **given))


def apply(plan_id: str, **given: object) -> RunSummary:
    return apply_plan(load_settings(ActivateSettings, dry_run=False, **given), plan_id)


def rows(summary: RunSummary) -> list[dict]:
    path = Path(summary.outbox or "") / "plan.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def outbox_keys(summary: RunSummary, destination: str) -> set[str]:
    lines = (Path(summary.outbox or "") / f"{destination}.jsonl").read_text().splitlines()
    return {json.loads(line)["idempotency_key"] for line in lines}


def test_the_plan_is_per_customer_in_words_and_its_counts_agree(warehouse_copy: Path, servers) -> None:
    s = plan()
    plan_rows = rows(s)
    assert len(plan_rows) == s.decisions == sum(s.counts.values())  # every decided customer, once
    assert {r["status"] for r in plan_rows} == {k for k, v in s.counts.items() if v}
    # counts agree: summary, plan header, guardrail impact (each decision once, under its outcome)
    outbox = Path(s.outbox or "")
    header = json.loads((outbox / "plan.json").read_text())
    impact = json.loads((outbox / "guardrail_impact.json").read_text())
    assert header["counts"] == s.counts
    assert {st: o["decisions"] for st, o in impact["outcomes"].items()} == {
        k: v for k, v in s.counts.items() if v
    }
    for st, o in impact["outcomes"].items():
        assert sum(o["decided_by"].values()) == o["decisions"] == sum(s.outcomes[st].values())
    assert impact["outcomes"]["deferred"]["decisions"] == s.counts["deferred"] == s.deferred
    quiet = impact["checks"]["quiet_hours"]
    assert sum(quiet["not_passed_by_status"].values()) == quiet["fixed"]  # 109 fixed, split by status
    assert "counts decisions" in impact["counting"]
    # create on a warehouse that never delivered; one line per send per destination
    assert s.plan == {d: {"create": s.counts["send"]} for d in ("hubspot", "salesforce", "webhook")}
    # reasons in words, from the guardrail report
    why = {r["status"]: [] for r in plan_rows}
    for r in plan_rows:
        why[r["status"]].append(r["why"])
    window = re.compile(
        r"last (email|sms|push) \d+(\.\d)? h ago; window 24 h; eligible again 2026-11-2\d \d\d:\d\d UTC"
    )
    assert any(window.search(w) for w in why["suppressed"]), why["suppressed"][:5]
    assert any("no consent on any channel" in w for w in why["suppressed"])
    assert all("quiet hours" in w and "deferred to 2026-11-2" in w for w in why["deferred"])
    assert all("holdout" in w or "control group" in w for w in why["holdout"])
    assert all(r["why"] == "" and r["action"]["channel"] for r in plan_rows if r["status"] == "send")
    text = (outbox / "plan.txt").read_text()
    assert f"make apply PLAN={s.run_id}" in text and text.count("hubspot create") == s.counts["send"]


def test_apply_sends_exactly_the_planned_rows(warehouse_copy: Path, servers) -> None:
    hs, sf, wh = servers.all()
    s = plan()
    sends = s.counts["send"]
    assert hs.stats()["unique_records"] == 0  # a plan sends nothing
    applied = apply(s.run_id)
    assert applied.applied_plan == s.run_id and applied.counts == s.counts
    for name in ("hubspot", "salesforce", "webhook"):
        assert applied.destinations[name]["delivered"] == sends
    # counted at the servers: the planned rows, with the planned idempotency keys, once each
    assert hs.stats()["unique_records"] == sends and sf.stats()["stored_decisions"] == sends
    assert set(wh.events) == outbox_keys(s, "webhook")
    planned = {r["decision_id"] for r in rows(s) if r["status"] == "send"}
    assert set(wh.decision_versions) == planned and hs.stats()["changed_decisions"] == 0
    # logged as a live run of the plan's decisions (same ids), the ledger has what was delivered
    db = warehouse_copy
    logged = query(db, "select decision_id, status from ops.decision_log where run_id = ?", [applied.run_id])
    assert {d for d, st in logged if st == "send"} == planned and len(logged) == s.decisions
    assert scalar(db, "select count(*) from ops.contact_ledger") == 3 * sends
    status = query(
        db, "select status, dry_run, summary_json from ops.run_log where run_id = ?", [applied.run_id]
    )
    assert status[0][:2] == ("completed", False) and json.loads(status[0][2])["applied_plan"] == s.run_id

    # the same plan twice: refused, nothing more sent
    with pytest.raises(PlanRefused, match="applied already by run " + applied.run_id):
        apply(s.run_id)
    assert wh.stats()["requests"] == sends


def test_a_stale_plan_and_a_plan_on_another_state_are_refused(
    warehouse_copy: Path, servers, monkeypatch
) -> None:
    hs, _, wh = servers.all()
    s = plan(limit=60)
    monkeypatch.setenv("NBA_PLAN__MAX_AGE_MINUTES", "0.0001")
    with pytest.raises(PlanRefused, match=r"older than its freshness limit .*NBA_PLAN__MAX_AGE_MINUTES"):
        apply(s.run_id)
    monkeypatch.delenv("NBA_PLAN__MAX_AGE_MINUTES")
    # a live run changes the ledger and the delivery state the plan was built on
    live = run_activation(load_settings(ActivateSettings, dry_run=False, limit=20))
    sent = wh.stats()["requests"]
    assert live.counts["send"] > 0 and sent == live.counts["send"]
    with pytest.raises(
        PlanRefused, match=r"another warehouse state \(contact ledger: 0 rows.*delivery state: 0 rows"
    ):
        apply(s.run_id)
    assert wh.stats()["requests"] == sent and hs.stats()["requests"] > 0  # the refusal sent nothing
    # through the CLI: one line on stderr, exit 2
    rc = cli(["apply", "--plan", s.run_id, "--no-progress"])
    assert rc == 2 and wh.stats()["requests"] == sent


def test_apply_never_writes_into_a_file_that_is_not_our_warehouse(
    warehouse_copy: Path, servers, tmp_path: Path, monkeypatch, capsys
) -> None:
    """NBA_DUCKDB_PATH at another project's DuckDB file (or a truncated one) under `make apply` of a
    valid plan: apply created our ops tables in it (the file changed), then ended in a raw catalog or
    IO error, exit 1. Refused in one line, exit 2, the file byte for byte as it was, nothing sent."""
    import duckdb

    _, _, wh = servers.all()
    s = plan(limit=20)
    theirs = tmp_path / "theirs.duckdb"
    with duckdb.connect(str(theirs)) as con:
        con.execute("create table customers_master as select range as id from range(10)")
    truncated = tmp_path / "cut.duckdb"
    truncated.write_bytes(warehouse_copy.read_bytes()[: warehouse_copy.stat().st_size // 2])
    capsys.readouterr()
    for db, words in ((theirs, "did not build"), (truncated, "is truncated")):
        before = hashlib.sha256(db.read_bytes()).hexdigest()
        monkeypatch.setenv("NBA_DUCKDB_PATH", str(db))
        assert cli(["apply", "--plan", s.run_id, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(db) in err[0] and words in err[0], err
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert wh.stats()["requests"] == 0


def test_an_edited_plan_or_one_the_engine_would_send_differently_is_refused(
    warehouse_copy: Path, servers, capsys
) -> None:
    _, _, wh = servers.all()
    s = plan(limit=40)
    path = Path(s.outbox or "") / "plan.jsonl"
    original = path.read_text()
    path.write_text(original.replace('"discount_pct": 5.0', '"discount_pct": 50.0', 1))
    with pytest.raises(PlanRefused, match="changed after it was planned"):
        apply(s.run_id)
    # a consistent edit (header hash updated) of a planned payload hash: the engine's own plan, recomputed
    # from the planned decisions, no longer matches, so the plan is not sent
    first = next(r for r in map(json.loads, original.splitlines()) if r["status"] == "send")
    tampered = original.replace(first["destinations"]["webhook"]["payload_hash"], "0" * 32)
    path.write_text(tampered)
    header_path = path.with_name("plan.json")
    header = json.loads(header_path.read_text())
    header["rows_sha256"] = hashlib.sha256(tampered.encode()).hexdigest()
    header_path.write_text(json.dumps(header))
    rc = cli(["apply", "--plan", s.run_id, "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "would not be sent as planned to webhook" in err[0], err
    assert wh.stats()["requests"] == 0
    assert cli(["apply", "--plan", "../etc", "--no-progress"]) == 2
    assert cli(["apply", "--plan", "20990101T000000Z-000000", "--no-progress"]) == 2


def test_a_plan_after_deliveries_shows_updates_with_field_diffs_and_refusals(
    warehouse_copy: Path, servers
) -> None:
    first = plan(limit=40)
    apply(first.run_id)
    # the same customers again (no suppression window) with another goal: other actions for records
    # already delivered -> updates, with the fields that change
    again = plan(limit=40, suppress_hours=0, goal="engagement")
    by_op: dict[str, list[dict]] = {}
    for r in rows(again):
        for dest, e in r.get("destinations", {}).items():
            by_op.setdefault(f"{dest}:{e['op']}", []).append(e)
    updates = by_op.get("hubspot:update", [])
    assert updates, again.plan
    assert all(e["changes"] for e in updates)
    assert any("properties.nba_goal" in e["changes"] for e in updates)
    assert all(e["changes"]["properties.nba_goal"] == ["90d_clv", "engagement"] for e in updates)
    assert sum(again.plan["hubspot"].values()) == again.counts["send"]
    text = (Path(again.outbox or "") / "plan.txt").read_text()
    assert "hubspot update: " in text and "nba_goal 90d_clv -> engagement" in text

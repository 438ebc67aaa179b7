"""Nothing lost, nothing sent twice, and a run's status follows its rows (issue 14), end to end: the
`activate` command on the demo warehouse against the local HubSpot, Salesforce and webhook servers
over real HTTP, counted at the servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_helpers import ROOT, Servers, query, scalar, subprocess_env

from activation.cli import main as activate_main

# The first customers of the demo warehouse (--limit): 120 give 57 send decisions, 200 give 87.
LIVE = ["activate", "--mode", "rules", "--live", "--no-progress", "--limit", "120"]
CLI = [sys.executable, "-m", "activation.cli", *LIVE, "--output", "json"]
KILL_CLI = [*CLI[:-3], "200", "--output", "json"]
TASK_TEMPLATES = ("cs_followup", "cs_followup_offer")


def _wait_for(predicate, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _run_ids(db: Path) -> set[str]:
    return {r for (r,) in query(db, "select distinct run_id from ops.decision_log")}


def _sends(db: Path, run_id: str | None = None, *, before: set[str] = frozenset()) -> list[tuple[str, ...]]:
    """(decision_id, customer_id, channel, segment, template_id) of a run's send decisions; without
    `run_id`, of the one run logged since `before` was taken."""
    if run_id is None:
        (run_id,) = _run_ids(db) - before
    return query(
        db,
        "select decision_id, customer_id, channel, segment, template_id from ops.decision_log "
        "where run_id = ? and status = 'send' order by decision_id",
        [run_id],
    )


def _run_status(db: Path) -> str:
    return query(db, "select status from ops.run_log order by finished_at desc limit 1")[0][0]


def assert_exactly_once(s: Servers, db: Path, sends: list[tuple[str, ...]]) -> None:
    """Every send decision is stored once by every server, no decision with two payloads, no customer
    with two decisions; the ledger holds one row per (decision, destination) and nothing else."""
    ids = {d for d, *_ in sends}
    hs, sf, wh = (server.stats() for server in s.all())
    for name, st in (("hubspot", hs), ("salesforce", sf), ("webhook", wh)):
        assert st["stored_decisions"] == len(ids), (name, st["stored_decisions"], len(ids))
        assert st["changed_decisions"] == 0 and st["customers_with_several_decisions"] == 0, (name, st)
    assert {c["properties"]["nba_decision_id"] for c in s.hubspot.contacts.values()} == ids
    assert hs["enrollments"] == sum(1 for _, _, channel, *_ in sends if channel == "email")
    assert {c["NBA_Last_Decision_Id__c"] for c in s.salesforce.records["Contact"].values()} == ids
    tasks = sum(1 for *_, seg, tpl in sends if seg == "churn_rescue_nps" and tpl in TASK_TEMPLATES)
    assert sf["tasks"] == tasks and sf["changed_tasks"] == 0
    assert wh["unique_records"] == wh["unique_decisions"] == len(ids)
    assert {e["decision_id"] for e in s.webhook.events.values()} == ids
    assert scalar(db, "select count(*) from ops.contact_ledger") == 3 * len(ids)
    ledger = query(db, "select distinct decision_id from ops.contact_ledger")
    assert {d for (d,) in ledger} == ids
    assert scalar(db, "select count(distinct (decision_id, destination)) from ops.contact_ledger") == 3 * len(
        ids
    )
    assert scalar(db, "select count(*) from ops.delivery_state where status <> 'delivered'") == 0


@pytest.mark.parametrize(
    "kill_during", ["webhook", "hubspot"], ids=["kill-during-the-last-destination", "kill-during-the-first"]
)
def test_sigkill_mid_delivery_then_rerun_delivers_every_decision_once(
    warehouse_copy: Path, start_servers, monkeypatch: pytest.MonkeyPatch, capsys, kill_during: str
):
    if kill_during == "hubspot":  # ten rows a request, slowly: killed with most rows not sent anywhere
        s = start_servers(hubspot={"latency_ms": 150})
        monkeypatch.setenv("NBA_HUBSPOT__MAX_BATCH", "10")
    else:
        s = start_servers(webhook={"latency_ms": 20})
    target = s.hubspot if kill_during == "hubspot" else s.webhook
    proc = subprocess.Popen(
        KILL_CLI, env=subprocess_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    reached = _wait_for(lambda: target.stats()["total_writes"] >= 20)
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert reached, err.decode()[-2000:]
    sends = _sends(warehouse_copy)
    assert len(sends) > 80
    assert target.stats()["unique_records"] < len(sends)  # the kill landed mid-destination
    capsys.readouterr()
    assert activate_main(KILL_CLI[3:]) == 0, capsys.readouterr().err  # the rerun, in this process
    summary = json.loads(capsys.readouterr().out)
    retried = summary["destinations"][kill_during]["retried"]
    assert retried >= len(sends) - 30  # the rerun re-sends what was left, with the payloads of the first
    assert_exactly_once(s, warehouse_copy, sends)
    assert _run_status(warehouse_copy) == "completed"


def test_wrong_token_fails_the_run_and_the_corrected_rerun_delivers_every_row(
    warehouse_copy: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch, capsys
):
    monkeypatch.setenv("NBA_HUBSPOT__TOKEN", "wrong-token")
    assert activate_main(LIVE) == 3  # partial: Salesforce and the webhook have every row, HubSpot none
    err = capsys.readouterr().err
    assert "hubspot" in err and "NBA_HUBSPOT__TOKEN" in err and "make activate" in err, err
    assert "wrong-token" not in err
    assert _run_status(warehouse_copy) == "partial"
    assert servers.hubspot.stats()["unique_records"] == 0
    sends = _sends(warehouse_copy)
    failed = scalar(warehouse_copy, "select count(*) from ops.delivery_state where status = 'failed'")
    assert failed == len(sends)
    monkeypatch.setenv("NBA_HUBSPOT__TOKEN", servers.hubspot.token)
    assert activate_main(LIVE) == 0, capsys.readouterr().err
    assert_exactly_once(servers, warehouse_copy, sends)
    assert _run_status(warehouse_copy) == "completed"


def test_every_webhook_send_failing_fails_the_run_and_replay_dlq_delivers_it(
    warehouse_copy: Path, start_servers, monkeypatch: pytest.MonkeyPatch, capsys
):
    s = start_servers(webhook={"error_rate": 1.0})
    monkeypatch.setenv("NBA_DESTINATIONS", "webhook")
    monkeypatch.setenv("NBA_DELIVERY__MAX_RETRIES", "1")
    assert activate_main(LIVE) == 1
    err = capsys.readouterr().err
    assert "webhook" in err and "server error" in err and "make replay-dlq" in err, err
    assert _run_status(warehouse_copy) == "failed"
    sends = _sends(warehouse_copy)
    assert sends and scalar(warehouse_copy, "select count(*) from ops.contact_ledger") == 0
    # half the injected 500s come after the write: the server may hold some; nobody may hold one twice
    s.webhook.knobs.error_rate = 0.0
    assert activate_main(["replay-dlq"]) == 0
    out = capsys.readouterr().out  # the table says what was owed and what got through
    assert f"completed, {len(sends)} row(s) owed" in out and "webhook" in out, out
    st = s.webhook.stats()
    assert st["unique_decisions"] == st["unique_records"] == len(sends) and st["changed_decisions"] == 0
    assert scalar(warehouse_copy, "select count(*) from ops.contact_ledger") == len(sends)
    assert scalar(warehouse_copy, "select count(*) from ops.delivery_state where status <> 'delivered'") == 0


def test_same_day_rerun_never_sends_a_second_action_under_one_decision_id(
    warehouse_copy: Path, servers: Servers, capsys
):
    assert activate_main([*LIVE, "--discount-cap", "5"]) == 0
    first = _sends(warehouse_copy)
    before = _run_ids(warehouse_copy)
    capsys.readouterr()
    # Same day, no suppression window, another cap: some customers get another action. Each second
    # action has its own decision id (the id covers what the decision does), so it is delivered and
    # recorded as the contact it is; no decision id ever carries two payloads.
    rc = activate_main([*LIVE, "--discount-cap", "0", "--suppress-hours", "0", "--force"])
    assert rc == 0, capsys.readouterr().err
    second = _sends(warehouse_copy, before=before)
    first_ids = {d for d, *_ in first}
    changed = [s for s in second if s[0] not in first_ids]
    assert changed, "the lower cap changes some actions"
    assert len({s[0] for s in changed}) == len(changed)
    for server in servers.all():
        st = server.stats()
        assert st["changed_decisions"] == 0, server.name  # never two payloads under one id
    assert scalar(warehouse_copy, "select count(*) from ops.delivery_log where status = 'conflict'") == 0
    # the ledger holds what was delivered: one row per (decision, destination), the second contacts too
    rows = scalar(warehouse_copy, "select count(*) from ops.contact_ledger")
    assert rows == scalar(
        warehouse_copy, "select count(distinct (decision_id, destination)) from ops.contact_ledger"
    )
    delivered = scalar(warehouse_copy, "select count(*) from ops.delivery_state where status = 'delivered'")
    assert rows == delivered and rows > 3 * len(first)


def test_two_live_runs_at_once_one_delivers_the_other_refuses_in_one_line_naming_it(
    warehouse_copy: Path, start_servers
):
    s = start_servers(webhook={"latency_ms": 50})
    runs = [
        subprocess.Popen(CLI, env=subprocess_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [(p, *p.communicate(timeout=300)) for p in runs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 4], [(p.returncode, err.decode()[-500:]) for p, _, err in results]
    ((winner, out, _),) = [r for r in results if r[0].returncode == 0]
    ((_, _, err),) = [r for r in results if r[0].returncode == 4]
    run_id = json.loads(out)["run_id"]
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and run_id in lines[0] and f"pid {winner.pid}" in lines[0], lines
    assert _run_ids(warehouse_copy) == {run_id}  # the refused run decided and wrote nothing
    assert_exactly_once(s, warehouse_copy, _sends(warehouse_copy, run_id))


def test_after_live_runs_a_dbt_build_keeps_the_ops_rows_and_their_staging_tests_pass(
    warehouse_copy: Path, start_servers, monkeypatch: pytest.MonkeyPatch
):
    from warehouse.dbt_runner import run_dbt

    s = start_servers(webhook={"error_rate": 1.0})
    monkeypatch.setenv("NBA_DELIVERY__MAX_RETRIES", "1")
    assert activate_main(LIVE) == 3
    s.webhook.knobs.error_rate = 0.0
    assert activate_main(LIVE) == 0  # the webhook rows go out on their third request
    tables = ("delivery_state", "delivery_log", "contact_ledger", "dead_letter", "decision_log", "run_log")
    before = {t: query(warehouse_copy, f"select * from ops.{t} order by all") for t in tables}
    assert (
        scalar(warehouse_copy, "select max(attempt) from ops.delivery_log where destination = 'webhook'") == 3
    )
    # on-run-start re-runs the ops DDL; the staging tests check (idempotency_key, attempt) unique, attempt >= 1
    run_dbt(["build", "--select", "stg_ops__delivery_attempts", "stg_ops__contacts"])
    assert {t: query(warehouse_copy, f"select * from ops.{t} order by all") for t in tables} == before

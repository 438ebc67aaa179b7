"""The delivery engine over real HTTP against the local servers: batching, partial failures, rate
limits, retries, bisect, dead letters, replay, diffing, exactly-once across runs."""

from __future__ import annotations

import time

import duckdb
from connectors import hubspot_for, salesforce_for, webhook_for
from delivery_factory import make_decisions

from activation.delivery import deliver, replay_dead_letters
from activation.settings import DeliverySettings
from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer


def _run(con, decisions, dests, settings, run_id="r1", tmp=None):
    return deliver(
        decisions, con=con, run_id=run_id, dry_run=False, outbox_dir=tmp or "/nonexistent", destinations=dests,
        settings=settings,
    )  # fmt: skip


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchone()[0]


def test_batch_limits_101_hubspot_201_salesforce(con, fast, hubspot_server, salesforce_server):
    hs = _run(con, make_decisions(101, with_tasks=False), [hubspot_for(hubspot_server)], fast)
    assert hs.destinations["hubspot"].requests == 2 == hubspot_server.stats()["api_requests"]
    assert hubspot_server.stats()["unique_records"] == 101
    decisions = make_decisions(201, with_tasks=False)
    sf = _run(con, decisions, [salesforce_for(salesforce_server)], fast)
    assert sf.destinations["salesforce"].requests == 2
    assert salesforce_server.stats()["api_requests"] == 3  # one describe + two collection upserts
    assert salesforce_server.stats()["unique_records"] == 201
    assert _one(con, "select count(*) from ops.contact_ledger") == 302


def test_salesforce_tasks_reference_the_contact_and_are_not_duplicated(con, fast, salesforce_server):
    decisions = make_decisions(14)  # indexes 3 and 10 are customer-success follow-ups
    dest = salesforce_for(salesforce_server)
    assert _run(con, decisions, [dest], fast).ok
    tasks = list(salesforce_server.records["Task"].values())
    assert len(tasks) == 2
    for task in tasks:
        contact = salesforce_server.records["Contact"][task["WhoId"]]
        assert contact["NBA_Template_Id__c"] == "cs_followup_offer"
        assert task["NBA_Decision_Id__c"] == contact["NBA_Last_Decision_Id__c"]
    # the same decisions again: nothing is re-sent; another message under the same ids: refused
    assert _run(con, decisions, [dest], fast, run_id="r2").destinations["salesforce"].unchanged == 14
    changed = [d.model_copy(update={"message": d.message + " Reply anytime."}) for d in decisions]
    again = _run(con, changed, [dest], fast, run_id="r3").destinations["salesforce"]
    assert (again.conflict, again.delivered, again.requests) == (14, 0, 0)
    stats = salesforce_server.stats()
    assert stats["tasks"] == 2 and stats["task_writes"] == 2 and stats["changed_decisions"] == 0


def test_207_partial_failures_are_handled_per_row(con, fast):
    with HubSpotServer(partial_failure_rate=0.3, seed=11) as server:
        summary = _run(con, make_decisions(250), [hubspot_for(server)], fast)
        stats = server.stats()
    hs = summary.destinations["hubspot"]
    assert hs.delivered == 250 and hs.failed == hs.dead_letter == 0
    assert hs.retries > 0 and hs.requests > 3
    # good rows were never re-sent: every write the server took was a first write of a new contact
    assert stats["unique_records"] == stats["total_writes"] == 250
    conflicts = _one(
        con, "select count(*) from ops.delivery_log where status = 'failed' and error like 'CONFLICT%'"
    )
    assert conflicts > 0


def test_429_retry_after_is_honoured_and_does_not_use_the_retry_budget(con):
    settings = DeliverySettings(max_retries=0, backoff_base_s=0.01, seed=1)
    with WebhookServer(rate_429=0.4, retry_after_s=0.05, seed=5) as server:
        started = time.monotonic()
        summary = _run(con, make_decisions(30), [webhook_for(server)], settings)
        elapsed = time.monotonic() - started
        injected = server.stats()["injected_429"]
    wh = summary.destinations["webhook"]
    assert wh.delivered == 30 and wh.failed == 0, wh.errors
    assert injected > 0 and wh.rate_limited == injected and wh.retries == 0
    assert elapsed >= 0.05 * injected * 0.9


def test_rate_budget_keeps_under_the_declared_limit(con, fast):
    with HubSpotServer(rate_limit=5, rate_window_s=0.25, seed=1) as server:
        started = time.monotonic()
        summary = _run(con, make_decisions(30), [hubspot_for(server, max_batch=1)], fast)
        elapsed = time.monotonic() - started
        stats = server.stats()
    assert summary.destinations["hubspot"].delivered == 30
    assert stats["declared_limit_429"] == 0 and summary.destinations["hubspot"].rate_limited == 0
    assert stats["peak_in_window"] <= 5
    assert elapsed >= (30 / 5 - 1) * 0.25


def test_chaos_then_second_run_holds_every_decision_exactly_once(con, fast):
    knobs = {"error_rate": 0.3, "rate_429": 0.1, "retry_after_s": 0.02, "partial_failure_rate": 0.2}
    decisions = make_decisions(120)
    n_tasks = sum(d.template_id == "cs_followup_offer" for d in decisions)
    with (
        HubSpotServer(seed=21, **knobs) as hs,
        SalesforceServer(seed=22, **knobs) as sf,
        WebhookServer(seed=23, **knobs) as wh,
    ):
        dests = [hubspot_for(hs), salesforce_for(sf), webhook_for(wh)]
        first = _run(con, decisions, dests, fast.model_copy(update={"max_retries": 1}), run_id="r1")
        assert first.count("failed") > 0  # the chaos really bit: some rows are left for the next run
        second = _run(con, decisions, dests, fast.model_copy(update={"max_retries": 10}), run_id="r2")
        assert second.ok, second.destinations
        assert second.count("unchanged") == first.count("delivered")
        assert second.count("delivered") == first.count("failed")
        assert (
            hs.stats()["unique_records"]
            == sf.stats()["unique_records"]
            == wh.stats()["unique_records"]
            == 120
        )
        assert wh.stats()["unique_decisions"] == 120 and sf.stats()["tasks"] == n_tasks
        assert {c["properties"]["nba_decision_id"] for c in hs.contacts.values()} == {
            d.decision_id for d in decisions
        }
    assert _one(con, "select count(*) from ops.contact_ledger") == 360
    assert _one(con, "select count(distinct (decision_id, destination)) from ops.contact_ledger") == 360
    assert _one(con, "select count(*) from ops.delivery_state where status <> 'delivered'") == 0


def test_bisect_isolates_the_bad_row_then_replay_from_the_dead_letter_queue(con, fast, hubspot_server):
    decisions = make_decisions(10)
    bad = decisions[6] = decisions[6].model_copy(update={"discount_pct": 150.0})
    dest = hubspot_for(hubspot_server)
    summary = _run(con, decisions, [dest], fast)
    hs = summary.destinations["hubspot"]
    assert (hs.delivered, hs.dead_letter, hs.failed) == (9, 1, 0) and hs.bisections >= 3
    assert hubspot_server.stats()["unique_records"] == 9
    (decision_id, error), *rest = con.execute("select decision_id, error from ops.dead_letter").fetchall()
    assert not rest and decision_id == bad.decision_id and "nba_discount_pct='150'" in error
    # unchanged and still dead-lettered: a new run does not hammer the destination with it
    again = _run(con, decisions, [dest], fast, run_id="r2").destinations["hubspot"]
    assert (again.unchanged, again.dead_letter, again.requests) == (9, 1, 0)
    # the portal's validation rule is widened; the replay gets the row through exactly once
    hubspot_server.max_discount_pct = 200
    replay = replay_dead_letters(con, [dest], settings=fast)
    assert replay.destinations["hubspot"].delivered == 1 and replay.run_id.startswith("replay-")
    assert hubspot_server.stats()["unique_records"] == 10
    assert _one(con, "select count(*) from ops.dead_letter where replayed_at is null") == 0
    assert _one(con, "select count(*) from ops.contact_ledger where decision_id = ?", [bad.decision_id]) == 1
    assert replay_dead_letters(con, [dest], settings=fast).destinations["hubspot"].planned == 0


def test_diff_unchanged_not_resent_changed_refused_new_id_sent_failed_retried(con, fast, webhook_server):
    decisions = make_decisions(6)
    dest = webhook_for(webhook_server)
    assert _run(con, decisions, [dest], fast).destinations["webhook"].delivered == 6
    again = _run(con, decisions, [dest], fast, run_id="r2").destinations["webhook"]
    assert (again.unchanged, again.delivered, again.requests) == (6, 0, 0)
    # another message under a delivered decision id is refused; under its own decision id it is sent
    changed = list(decisions)
    changed[2] = changed[2].model_copy(update={"message": "A new message"})
    third = _run(con, changed, [dest], fast, run_id="r3").destinations["webhook"]
    assert (third.unchanged, third.conflict, third.delivered, third.requests) == (5, 1, 0, 0)
    assert not third.errors and not _run_ok(third)
    changed[2] = changed[2].model_copy(update={"decision_id": "d-2-second"})
    fourth = _run(con, changed, [dest], fast, run_id="r4").destinations["webhook"]
    assert (fourth.unchanged, fourth.delivered) == (5, 1)
    assert webhook_server.stats()["total_writes"] == 7 and webhook_server.stats()["changed_decisions"] == 0
    # a row that failed is retried by the next run, even one that does not decide for its customer
    webhook_server.knobs.error_rate = 1.0
    fresh = make_decisions(8)[6:]
    failing = _run(con, fresh, [dest], fast.model_copy(update={"max_retries": 0}), run_id="r5")
    assert failing.destinations["webhook"].failed == 2 and failing.status == "failed"
    webhook_server.knobs.error_rate = 0.0
    retried = _run(con, [], [dest], fast, run_id="r6")
    wh = retried.destinations["webhook"]
    assert (wh.retried, wh.delivered, wh.planned) == (2, 2, 0) and retried.status == "completed"
    statuses = con.execute("select status, attempt from ops.delivery_log where run_id = 'r6'").fetchall()
    assert sorted(statuses) == [("delivered", 2), ("delivered", 2)]  # the second request for each key
    assert webhook_server.stats()["unique_decisions"] == 9


def _run_ok(ds) -> bool:
    return ds.failed + ds.dead_letter + ds.conflict == 0


def test_salesforce_describe_check_fails_once_not_per_row(con, fast):
    with SalesforceServer(external_ids={"Contact": set(), "Task": {"NBA_Decision_Id__c"}}) as server:
        summary = _run(con, make_decisions(30), [salesforce_for(server, max_batch=10)], fast)
        stats = server.stats()
    sf = summary.destinations["salesforce"]
    expected = "Provided external ID field does not exist or is not accessible: Contact.NBA_Customer_Id__c"
    assert sf.blocked == expected and sf.failed == 30 and sf.dead_letter == 0
    assert stats["api_requests"] == 1  # the describe call, nothing else
    assert _one(con, "select count(*) from ops.dead_letter") == 0
    assert _one(con, "select count(*) from ops.delivery_state where status = 'failed'") == 30
    # the rows never sent are logged with attempt 0: attempts count requests that carried the row
    assert _one(con, "select count(*) from ops.delivery_log where attempt = 0") == 20


def test_webhook_wrong_secret_blocks_with_the_variable_to_fix(con, fast, webhook_server):
    summary = _run(con, make_decisions(3), [webhook_for(webhook_server, secret="wrong-secret")], fast)
    wh = summary.destinations["webhook"]
    assert wh.failed == 3 and "NBA_WEBHOOK__SECRET" in (wh.blocked or "")
    assert webhook_server.stats()["bad_signatures"] == 1 and webhook_server.stats()["unique_records"] == 0


def test_webhook_lost_response_is_deduplicated_by_idempotency_key(con, fast):
    # error_rate=1 on the first request only: half of injected errors happen after the write
    with WebhookServer(error_rate=0.5, seed=8) as server:
        summary = _run(
            con, make_decisions(40), [webhook_for(server)], fast.model_copy(update={"max_retries": 10})
        )
        stats = server.stats()
    assert summary.destinations["webhook"].delivered == 40
    assert stats["replays"] > 0  # some answers were lost after the write, the retry got the first answer back
    assert stats["unique_records"] == stats["total_writes"] == stats["unique_decisions"] == 40

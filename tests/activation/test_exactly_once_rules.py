"""The delivery state's exactly-once rules, whatever the decision-id scheme: outstanding rows go first
with their stored payloads, a customer with an outstanding decision gets no other, a changed payload
under a sent decision id is refused, a corrected dead letter replaces the rejected one, a replay sees
pending rows and never sends a superseded dead letter; counted at the local servers."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from connectors import hubspot_for, webhook_for
from delivery_factory import make_decision, make_decisions

from activation.delivery import deliver, replay_dead_letters
from activation.destinations.base import make_item
from activation.state import mark_pending, now_utc
from warehouse.ops_tables import ensure_ops_tables


def _run(con, decisions, dests, settings, run_id, tmp=Path("/nonexistent"), dry_run=False):
    return deliver(
        decisions, con=con, run_id=run_id, dry_run=dry_run, outbox_dir=tmp, destinations=dests, settings=settings
    )  # fmt: skip


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def test_an_outstanding_decision_goes_first_and_its_customer_gets_no_other(
    con, fast, hubspot_server, webhook_server
):
    dests = [hubspot_for(hubspot_server), webhook_for(webhook_server)]
    first = make_decisions(5, with_tasks=False)
    webhook_server.knobs.error_rate = 1.0
    r1 = _run(con, first, dests, fast.model_copy(update={"max_retries": 0}), "r1")
    assert r1.destinations["hubspot"].delivered == 5 and r1.destinations["webhook"].failed == 5
    assert r1.status == "partial"
    webhook_server.knobs.error_rate = 0.0
    # a later run decides a second, different action for the same customers under new decision ids
    second = [
        d.model_copy(update={"decision_id": f"second-{i}", "template_id": "vip_checkin"})
        for i, d in enumerate(first)
    ]
    r2 = _run(con, second, dests, fast, "r2")
    hs, wh = r2.destinations["hubspot"], r2.destinations["webhook"]
    assert (wh.retried, wh.delivered, wh.held) == (5, 5, 0 + 5)
    assert (hs.held, hs.delivered, hs.requests) == (5, 0, 0)
    assert r2.status == "completed"  # every decision owed was delivered; the held ones were never owed
    for server in (hubspot_server, webhook_server):
        st = server.stats()
        assert st["customers_with_several_decisions"] == 0 and st["stored_decisions"] == 5, st
    assert {e["decision_id"] for e in webhook_server.events.values()} == {d.decision_id for d in first}
    ledger = _rows(con, "select distinct decision_id from ops.contact_ledger")
    assert {d for (d,) in ledger} == {d.decision_id for d in first}
    held = _rows(con, "select count(*), min(error) from ops.delivery_log where status = 'held'")[0]
    assert held[0] == 10 and "outstanding" in held[1]


def test_a_changed_payload_under_a_sent_decision_id_is_refused_even_while_it_is_pending(
    con, fast, webhook_server
):
    dest = webhook_for(webhook_server)
    decisions = make_decisions(3)
    mark_pending(con, [make_item(dest, d) for d in decisions], "killed", now_utc())  # a run killed mid-send
    changed = [d.model_copy(update={"discount_pct": 0.0, "message": "Hi"}) for d in decisions]
    summary = _run(con, changed, [dest], fast, "r2")
    wh = summary.destinations["webhook"]
    assert (wh.retried, wh.delivered, wh.conflict) == (3, 3, 3) and summary.status == "partial"
    stored = {e["decision_id"]: e["discount_pct"] for e in webhook_server.events.values()}
    assert stored == {d.decision_id: 10.0 for d in decisions}  # the payload first sent, never the new one
    assert webhook_server.stats()["changed_decisions"] == 0


def test_a_corrected_dead_letter_replaces_the_rejected_one_and_no_replay_sends_it(con, fast, hubspot_server):
    dest = hubspot_for(hubspot_server)
    bad = make_decision(1, discount_pct=150.0)
    assert _run(con, [bad], [dest], fast, "r1").destinations["hubspot"].dead_letter == 1
    fixed = bad.model_copy(update={"discount_pct": 10.0, "message": "Hi there, here is 10% off."})
    assert _run(con, [fixed], [dest], fast, "r2").destinations["hubspot"].delivered == 1
    assert _rows(con, "select replay_outcome from ops.dead_letter") == [("replaced by a corrected payload",)]
    hubspot_server.max_discount_pct = 200  # even if the portal would take the old payload now
    replay = replay_dead_letters(con, [dest], settings=fast)
    assert replay.destinations["hubspot"].requests == 0
    contact = hubspot_server.contacts[bad.customer_id]["properties"]
    assert contact["nba_discount_pct"] == "10" and hubspot_server.stats()["changed_decisions"] == 0


def test_replay_sees_pending_rows_and_closes_a_superseded_dead_letter(
    con, fast, hubspot_server, webhook_server
):
    hub, hook = hubspot_for(hubspot_server), webhook_for(webhook_server)
    killed = make_decisions(4, with_tasks=False)
    mark_pending(con, [make_item(hook, d) for d in killed], "killed", now_utc())  # kill -9 before any answer
    old = make_decision(9, discount_pct=150.0)
    assert _run(con, [old], [hub], fast, "r1").destinations["hubspot"].dead_letter == 1
    newer = make_decision(9, decision_id="d9-next-day", discount_pct=5.0)
    assert _run(con, [newer], [hub], fast, "r2").destinations["hubspot"].delivered == 1
    hubspot_server.max_discount_pct = 200
    replay = replay_dead_letters(con, [hub, hook], settings=fast)
    assert replay.destinations["webhook"].retried == 4 and replay.destinations["webhook"].delivered == 4
    assert replay.destinations["hubspot"].requests == 0 and replay.status == "completed"
    assert hubspot_server.contacts[old.customer_id]["properties"]["nba_decision_id"] == "d9-next-day"
    (outcome,) = _rows(con, "select replay_outcome from ops.dead_letter")[0]
    assert outcome == "superseded by decision d9-next-day"
    assert webhook_server.stats()["unique_decisions"] == 4


def test_attempts_count_requests_across_runs_so_each_key_attempt_is_unique(con, fast):
    from testing.local_servers import WebhookServer

    with WebhookServer(error_rate=0.5, seed=4) as server:
        dest = webhook_for(server)
        decisions = make_decisions(30)
        _run(con, decisions, [dest], fast.model_copy(update={"max_retries": 0}), "r1")
        _run(con, decisions, [dest], fast.model_copy(update={"max_retries": 10}), "r2")
        assert server.stats()["unique_decisions"] == 30
    dupes = _rows(
        con,
        "select idempotency_key, attempt from ops.delivery_log where attempt > 0 group by all having count(*) > 1",
    )
    assert dupes == []
    assert _rows(
        con, "select min(attempt) from ops.delivery_log where status in ('delivered', 'dead_letter')"
    ) == [(1,)]
    retried = _rows(con, "select max(attempt) from ops.delivery_log where run_id = 'r2'")[0][0]
    assert retried >= 2  # a row failed in r1 continues its count in r2


def test_a_dry_run_shows_the_outstanding_rows_a_live_run_would_send_and_touches_no_state(
    con, fast, tmp_path, webhook_server
):
    dest = webhook_for(webhook_server)
    owed = make_decisions(2)
    mark_pending(con, [make_item(dest, d) for d in owed], "killed", now_utc())
    before = _rows(con, "select * from ops.delivery_state order by decision_id")
    dry = _run(con, make_decisions(5)[2:], [dest], fast, "dry", tmp=tmp_path, dry_run=True)
    lines = [json.loads(x) for x in (tmp_path / "dry" / "webhook.jsonl").read_text().splitlines()]
    assert {x["decision_id"] for x in lines[:2]} == {d.decision_id for d in owed} and len(lines) == 5
    assert dry.destinations["webhook"].retried == 2 and dry.destinations["webhook"].dry_run == 5
    assert _rows(con, "select * from ops.delivery_state order by decision_id") == before
    assert webhook_server.stats()["requests"] == 0


def test_older_warehouses_are_migrated_additively():
    con = duckdb.connect()
    con.execute("create schema ops")
    con.execute(
        "create table ops.dead_letter (run_id varchar, decision_id varchar, destination varchar, "
        'idempotency_key varchar, payload varchar, error varchar, "at" timestamp, replayed_at timestamp)'
    )
    con.execute("insert into ops.dead_letter values ('r', 'd', 'hubspot', 'k', '{}', 'e', now(), null)")
    ensure_ops_tables(con)
    ensure_ops_tables(con)
    assert _rows(con, "select decision_id, replay_outcome from ops.dead_letter") == [("d", None)]
    assert _rows(con, "select count(*) from ops.delivery_state") == [(0,)]

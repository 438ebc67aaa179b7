"""Deferred sends end to end on the demo warehouse against the local destination servers: a decision
deferred by quiet hours in one live run is sent by the next live run past its send-at time (once per
destination, in the contact ledger and the delivery state like any send), and one whose customer
withdrew consent in between is closed with the reason and never sent."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from run_helpers import Servers

from activation.run import run_activation
from activation.runs import warehouse_status
from activation.settings import ActivateSettings
from activation.summary import RunSummary
from core.config import load_settings

SEGMENT = "high_value_lapse_risk"


def live(as_of: datetime) -> RunSummary:
    return run_activation(
        load_settings(ActivateSettings, dry_run=False, force=True, segment=SEGMENT, as_of=as_of)
    )


def rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_deferred_decision_is_sent_by_the_next_run_past_its_window(
    warehouse_copy: Path, servers: Servers
) -> None:
    first = live(datetime.fromisoformat("2026-11-27T14:00:00+00:00"))
    assert first.counts["deferred"] > 1
    queued = rows(
        warehouse_copy,
        "select decision_id, customer_id, channel, send_at from ops.deferred_sends order by send_at, decision_id",
    )
    assert len(queued) == first.counts["deferred"]
    assert all(r[3] > datetime(2026, 11, 27, 14) for r in queued), "send-at: the end of the quiet hours"
    (kept_id, kept_cust, kept_ch, _), (gone_id, gone_cust, gone_ch, _) = queued[0], queued[1]
    # the owed rows, with their send-at time, in `status`
    owed = warehouse_status()["deferred"]
    assert owed["count"] == len(queued) and owed["rows"][0]["decision_id"] == kept_id
    # between the runs, the second customer withdraws consent on the deferred channel
    rows(
        warehouse_copy,
        f"update main.mart_marketing__customer_360 set consent_{gone_ch} = false where customer_id = ?",
        [gone_cust],
    )
    second = live(datetime.fromisoformat("2026-11-28T14:00:00+00:00"))  # past every window

    assert second.deferred_sends["sent"] >= 1 and second.deferred_sends["closed"] >= 1
    state = rows(
        warehouse_copy, "select destination, status from ops.delivery_state where decision_id = ?", [kept_id]
    )
    assert sorted(state) == [("hubspot", "delivered"), ("salesforce", "delivered"), ("webhook", "delivered")]
    ledger = rows(
        warehouse_copy,
        "select destination, channel, contacted_at from ops.contact_ledger where decision_id = ?",
        [kept_id],
    )
    assert len(ledger) == 3 and {r[1] for r in ledger} == {kept_ch}
    assert all(r[2] == datetime(2026, 11, 28, 14) for r in ledger), "contacted when it went out"
    assert servers.salesforce.contact(kept_cust)["NBA_Last_Decision_Id__c"] == kept_id
    # the customer who withdrew consent: closed with the reason, never sent
    closed = rows(
        warehouse_copy, "select close_reason from ops.deferred_sends where decision_id = ?", [gone_id]
    )
    assert "consent" in closed[0][0] and "not eligible at send time" in closed[0][0]
    assert rows(
        warehouse_copy, "select count(*) from ops.delivery_state where decision_id = ?", [gone_id]
    ) == [(0,)]
    # the demo figure: deferred decisions of the first run left unsent and open after the second: 0
    left = rows(
        warehouse_copy,
        "select count(*) from ops.deferred_sends q where decided_run_id = ? and closed_at is null and not exists "
        "(select 1 from ops.delivery_state s where s.decision_id = q.decision_id)",
        [first.run_id],
    )
    assert left == [(0,)]

    # a third run at the same time sends nothing of them again: at most once per destination
    before = rows(
        warehouse_copy,
        "select count(*) from ops.delivery_log where decision_id = ? and attempt > 0",
        [kept_id],
    )
    live(datetime.fromisoformat("2026-11-28T14:00:00+00:00") + timedelta(minutes=1))
    after = rows(
        warehouse_copy,
        "select count(*) from ops.delivery_log where decision_id = ? and attempt > 0",
        [kept_id],
    )
    assert before == after
    assert rows(
        warehouse_copy, "select count(*) from ops.contact_ledger where decision_id = ?", [kept_id]
    ) == [(3,)]

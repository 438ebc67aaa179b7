"""Dry runs write the outbox atomically and send nothing; secrets never reach an outbox, a log or a table."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from connectors import hubspot_for, salesforce_for, webhook_for
from delivery_factory import make_decisions

from activation.delivery import deliver
from activation.destinations import destinations_for
from activation.destinations.base import make_item
from activation.destinations.hubspot import HubSpotDestination, HubSpotSettings
from activation.outbox import write_outbox
from activation.settings import ActivateSettings
from core.config import load_settings
from testing.local_servers import HubSpotServer


def _dump_tables(con) -> str:
    text = []
    for table in ("delivery_log", "delivery_state", "contact_ledger", "dead_letter"):
        text.append(repr(con.execute(f"select * from ops.{table}").fetchall()))
    return "\n".join(text)


def test_dry_run_writes_the_outbox_atomically_and_sends_nothing(
    con, fast, tmp_path, hubspot_server, salesforce_server, webhook_server
):
    decisions = make_decisions(150) + [
        make_decisions(1)[0].model_copy(update={"status": "suppressed", "decision_id": "x"})
    ]
    dests = [hubspot_for(hubspot_server), salesforce_for(salesforce_server), webhook_for(webhook_server)]
    root = tmp_path / "outbox"
    summary = deliver(
        decisions, con=con, run_id="dry-1", dry_run=True, outbox_dir=root, destinations=dests, settings=fast,
        extra_files={"manifest.json": '{"run_id": "dry-1"}'},
    )  # fmt: skip
    out = Path(summary.outbox_path or "")
    assert out == root / "dry-1"
    assert sorted(p.name for p in out.iterdir()) == [
        "hubspot.jsonl",
        "manifest.json",
        "salesforce.jsonl",
        "webhook.jsonl",
    ]
    assert [p.name for p in root.iterdir()] == ["dry-1"]  # no temp directory left behind
    lines = [json.loads(line) for line in (out / "hubspot.jsonl").read_text().splitlines()]
    assert len(lines) == 150 and {line["batch"] for line in lines} == {0, 1}
    assert lines[0]["payload"] == make_item(dests[0], decisions[0]).payload
    assert all(s.stats()["requests"] == 0 for s in (hubspot_server, salesforce_server, webhook_server))
    assert summary.count("dry_run") == 450
    for table in ("delivery_state", "contact_ledger", "dead_letter"):
        assert con.execute(f"select count(*) from ops.{table}").fetchone()[0] == 0
    assert con.execute("select count(*) from ops.delivery_log where status = 'dry_run'").fetchone()[0] == 450
    # a second dry run of the same run id replaces the directory as a whole
    deliver(
        decisions[:10],
        con=con,
        run_id="dry-1",
        dry_run=True,
        outbox_dir=root,
        destinations=dests,
        settings=fast,
    )
    assert (
        len((out / "hubspot.jsonl").read_text().splitlines()) == 10 and not (out / "manifest.json").exists()
    )


def test_outbox_write_is_all_or_nothing(tmp_path):
    with pytest.raises(ValueError):
        write_outbox(tmp_path, "run-x", {"ok.jsonl": "1\n", "../escape.jsonl": "2\n"})
    assert list(tmp_path.iterdir()) == []


def test_dry_run_needs_no_credentials(monkeypatch, tmp_path, con, fast):
    dests = destinations_for(load_settings(ActivateSettings))
    assert [d.name for d in dests] == ["hubspot", "salesforce", "webhook"]
    summary = deliver(make_decisions(3), con=con, run_id="d", dry_run=True, outbox_dir=tmp_path, destinations=dests,
                      settings=fast)  # fmt: skip
    assert summary.count("dry_run") == 9


def test_secrets_never_reach_outbox_logs_or_tables(
    con, fast, tmp_path, caplog, salesforce_server, webhook_server
):
    caplog.set_level(logging.DEBUG)
    token = "pat-na1-SUPERSECRET-0000"
    with HubSpotServer(token="something-else") as wrong_token_server:
        dests = [
            HubSpotDestination(HubSpotSettings(token=token, base_url=wrong_token_server.url)),
            salesforce_for(salesforce_server),
            webhook_for(webhook_server),
        ]
        secrets = [token, salesforce_server.session_id, webhook_server.secret]
        decisions = make_decisions(20)
        decisions[5] = decisions[5].model_copy(update={"discount_pct": 150.0})  # a dead letter at Salesforce
        live = deliver(decisions, con=con, run_id="live", dry_run=False, outbox_dir=tmp_path, destinations=dests,
                       settings=fast)  # fmt: skip
        dry = deliver(decisions, con=con, run_id="dry", dry_run=True, outbox_dir=tmp_path, destinations=dests,
                      settings=fast)  # fmt: skip
    assert (
        live.destinations["hubspot"].blocked and "NBA_HUBSPOT__TOKEN" in live.destinations["hubspot"].blocked
    )
    assert live.destinations["salesforce"].dead_letter == 1
    haystack = _dump_tables(con) + caplog.text + live.model_dump_json() + dry.model_dump_json()
    haystack += "".join(p.read_text() for p in Path(dry.outbox_path or "").iterdir())
    haystack += repr(dests[0].settings) + repr(dests[2].settings)
    for secret in secrets:
        assert secret not in haystack

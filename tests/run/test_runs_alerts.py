"""History and alerts: `runs` / `status` read back from the ops tables, the activation-metrics mart
refreshed at the end of every run (equal to what dbt itself builds), and a failed or partial live run
posting a signed alert to a local receiver, and saying so."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from run_helpers import query

from activation.cli import main as cli
from activation.errors import DeliveryIncomplete
from activation.render import print_runs, print_status
from activation.run import run_activation
from activation.runs import METRICS_MART, read_only, recent_runs, warehouse_status
from activation.settings import ActivateSettings
from core.config import load_settings
from testing.local_servers.alerts import ALERT_PATH, AlertReceiver


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertReceiver]:
    with AlertReceiver(secret="alert-secret-for-tests") as r:
        monkeypatch.setenv("NBA_ALERTS__WEBHOOK_URL", f"{r.url}{ALERT_PATH}?token=do-not-print")
        monkeypatch.setenv("NBA_ALERTS__SECRET", "alert-secret-for-tests")
        yield r  # type: ignore[misc]


def metrics(db: Path) -> list[tuple]:
    return query(db, f"select * from main.{METRICS_MART} order by all")


def test_a_partial_live_run_posts_a_signed_alert_and_says_so(
    warehouse_copy: Path, start_servers, receiver: AlertReceiver, capsys
) -> None:
    start_servers(webhook={"error_rate": 1.0})  # every webhook request fails: the run ends partial
    rc = cli(["activate", "--live", "--limit", "25", "--no-progress", "--output", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 3 and out["status"] == "partial"
    assert len(receiver.alerts) == 1 and not receiver.rejected  # the signature verified at the receiver
    alert = receiver.alerts[0]
    assert (
        alert["run_id"] == out["run_id"] and alert["status"] == "partial" and alert["command"] == "activate"
    )
    assert any("webhook" in line and "failed" in line for line in alert["report"])
    assert alert["destinations"]["webhook"]["failed"] == out["counts"]["send"]
    posted = [n for n in out["notes"] if n.startswith("alert posted to ")]
    assert posted == [f"alert posted to {receiver.url} (run {out['run_id']} partial)"]
    assert "do-not-print" not in json.dumps(out)  # the URL's query (a token) is never printed
    # the mart has this run's rows without a dbt build
    failures = query(
        db=warehouse_copy, sql=f"select sum(failures) from main.{METRICS_MART} where destination = 'webhook'"
    )
    assert failures[0][0] > 0  # failures counted


def test_no_alert_for_a_completed_run_and_an_unreachable_receiver_does_not_change_the_outcome(
    warehouse_copy: Path, servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AlertReceiver(secret="s") as r:
        monkeypatch.setenv("NBA_ALERTS__WEBHOOK_URL", f"{r.url}{ALERT_PATH}")
        monkeypatch.setenv("NBA_ALERTS__SECRET", "s")
        done = run_activation(load_settings(ActivateSettings, dry_run=False, limit=15))
        assert r.alerts == [] and not any(n.startswith("alert") for n in done.notes)
    # receiver gone, webhook failing: the run still ends partial (exit 3), and says the alert was not posted
    servers.webhook.knobs.update({"error_rate": 1.0})
    with pytest.raises(DeliveryIncomplete) as info:
        run_activation(load_settings(ActivateSettings, dry_run=False, limit=40, suppress_hours=0))
    assert info.value.exit_code == 3
    assert any(n.startswith("alert NOT posted to http://127.0.0.1:") for n in info.value.summary.notes)


def test_alert_settings_are_checked_and_signed_like_the_destination_webhook(monkeypatch) -> None:
    from activation.alerts import post_alert
    from activation.settings import AlertSettings

    monkeypatch.setenv("NBA_ALERTS__WEBHOOK_URL", "http://127.0.0.1:9/alerts")
    assert cli(["plan", "--no-progress"]) == 2  # one line naming NBA_ALERTS__SECRET, before any work
    with AlertReceiver(secret="k") as r:
        note = post_alert(
            AlertSettings(webhook_url=f"{r.url}{ALERT_PATH}", secret="k"),  # type: ignore[arg-type]
            {"run_id": "R", "status": "failed", "event": "nba.run.alert"},
        )
        assert note == f"alert posted to {r.url} (run R failed)" and r.alerts[0]["status"] == "failed"
        ts = 1_700_000_000
        body = b'{"a":1}'
        expected = hmac.new(b"k", f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        from activation.destinations.webhook.connector import sign

        assert sign("k", body, ts) == f"t={ts},v1={expected}"
        assert r.verify(sign("wrong", body), body) == "bad signature"


def test_the_metrics_mart_after_a_run_equals_dbts_own_build(warehouse_copy: Path, servers) -> None:
    from warehouse.dbt_runner import run_dbt

    assert metrics(warehouse_copy) == []  # empty on a fresh build
    plan = run_activation(load_settings(ActivateSettings, dry_run=True))
    run_activation(load_settings(ActivateSettings, dry_run=False, limit=60))
    ours = metrics(warehouse_copy)
    assert ours and any(n.startswith(f"{METRICS_MART} refreshed (") for n in plan.notes)
    run_dbt(["run", "--select", METRICS_MART])  # the same model, built by dbt
    assert metrics(warehouse_copy) == ours


def test_runs_and_status_from_the_ops_tables(warehouse_copy: Path, start_servers, capsys) -> None:
    servers = start_servers(hubspot={"error_rate": 1.0})
    plan = run_activation(load_settings(ActivateSettings, dry_run=True, limit=30))
    with pytest.raises(DeliveryIncomplete):
        run_activation(load_settings(ActivateSettings, dry_run=False, limit=30, force=True))
    with read_only() as con:
        runs = recent_runs(con, 10)
    assert [r["kind"] for r in runs] == ["live", "plan"] and runs[1]["run_id"] == plan.run_id
    live = runs[0]
    assert live["status"] == "partial" and live["not_delivered"] > 0 and live["delivered"] > 0
    assert live["duration_s"] is not None and live["send"] == plan.counts["send"]
    info = warehouse_status()
    assert info["latest"]["run_id"] == live["run_id"] and info["owed"]["hubspot"]["failed"] == live["send"]
    assert info["plan"] is None  # a live run came after the plan
    buf = io.StringIO()
    console = Console(file=buf, width=80, color_system=None)
    print_runs(runs, console)
    print_status(info, console)
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert live["run_id"] in text and "partial" in text and "make replay-dlq" in text
    assert cli(["runs", "--output", "json", "--last", "1"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [live["run_id"]]
    assert cli(["status"]) == 0 and "owed to" in capsys.readouterr().out
    assert servers.hubspot.stats()["injected_errors"] > 0

"""Every run is in ops.run_log from its first second (issue 29, item 3): a live run killed with SIGKILL
mid-delivery is listed `abandoned` with what it delivered and what it owes, `status` no longer offers
the plan made before it, and the next writer records the abandonment for good; a run stopped by an
exception ends `error`, not `running`."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from run_helpers import ROOT, query, scalar, subprocess_env

from activation.cli import main as cli
from activation.render import print_runs, print_status
from activation.run import run_activation
from activation.runs import read_only, recent_runs, warehouse_status
from activation.settings import ActivateSettings
from core.config import load_settings

LIVE = [sys.executable, "-m", "activation.cli", "activate", "--mode", "rules", "--live", "--no-progress"]
KILL_CLI = [*LIVE, "--limit", "200", "--output", "json"]


def _wait_for(predicate, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _killed_live_run(db: Path, start_servers, monkeypatch: pytest.MonkeyPatch) -> str:
    """A live run SIGKILLed while HubSpot (the first destination) is half sent; returns its run id."""
    s = start_servers(hubspot={"latency_ms": 150})
    monkeypatch.setenv("NBA_HUBSPOT__MAX_BATCH", "10")
    proc = subprocess.Popen(
        KILL_CLI, env=subprocess_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    reached = _wait_for(lambda: s.hubspot.stats()["total_writes"] >= 20)
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert reached, err.decode()[-2000:]
    rows = query(db, "select run_id, status from ops.run_log where not dry_run")
    assert len(rows) == 1 and rows[0][1] == "running", rows  # written at its start, never finished
    return str(rows[0][0])


def test_a_killed_live_run_is_listed_abandoned_and_status_offers_no_older_plan(
    warehouse_copy: Path, start_servers, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    plan = run_activation(load_settings(ActivateSettings, dry_run=True, limit=30))
    assert warehouse_status()["plan"]["run_id"] == plan.run_id  # offered, before the live run
    killed = _killed_live_run(warehouse_copy, start_servers, monkeypatch)

    with read_only() as con:
        runs = recent_runs(con, 10)
    assert [(r["run_id"], r["kind"], r["status"]) for r in runs] == [
        (killed, "live", "abandoned"),
        (plan.run_id, "plan", "completed"),
    ]
    dead = runs[0]
    state = dict(
        query(
            warehouse_copy,
            "select status, count(*) from ops.delivery_state where last_run_id = ? group by all",
            [killed],
        )
    )
    assert dead["delivered"] == state["delivered"] > 0  # the HubSpot rows that got through
    assert dead["owed"] == state["pending"] > dead["delivered"]  # the rest, all three destinations
    assert dead["send"] > 80  # its decisions were written before it sent

    info = warehouse_status()
    assert info["latest"]["run_id"] == killed and info["latest"]["status"] == "abandoned"
    assert info["plan"] is None  # the plan is older than the live run: never offered again
    buf = io.StringIO()
    console = Console(file=buf, width=100, color_system=None)
    print_status(info, console)
    print_runs(runs, console)
    text = " ".join(buf.getvalue().split())  # wrapped to the console's width
    assert f"{dead['delivered']} rows delivered, {dead['owed']} owed" in text and "abandoned" in text
    assert f"PLAN={plan.run_id}" not in text and plan.run_id in text  # listed by runs, not offered by status

    capsys.readouterr()
    assert cli(["status", "--output", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["latest"]["status"] == "abandoned" and shown["plan"] is None
    assert cli(["runs", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "abandoned"

    # the next live run records the abandonment (same counts, taken before it re-sends) and completes
    assert cli(KILL_CLI[3:]) == 0, capsys.readouterr().err
    after = json.loads(
        query(warehouse_copy, "select summary_json from ops.run_log where run_id = ?", [killed])[0][0]
    )
    assert query(warehouse_copy, "select status from ops.run_log where run_id = ?", [killed]) == [
        ("abandoned",)
    ]
    assert after["delivered"] == dead["delivered"] and after["owed"] == dead["owed"]
    assert after["abandoned"]["noticed_by"] != killed
    assert scalar(warehouse_copy, "select count(*) from ops.delivery_state where status <> 'delivered'") == 0
    assert scalar(warehouse_copy, "select count(*) from ops.run_log where status = 'running'") == 0


def test_a_run_stopped_by_an_exception_ends_error_with_its_reason(
    warehouse_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.pipeline import Pipeline

    def boom(*_a, **_k):
        raise RuntimeError("the decision step broke")

    monkeypatch.setattr(Pipeline, "decide", boom)
    with pytest.raises(RuntimeError):
        run_activation(load_settings(ActivateSettings, dry_run=True, limit=5))
    ((status, finished, raw),) = query(
        warehouse_copy, "select status, finished_at, summary_json from ops.run_log"
    )
    assert status == "error" and finished is not None
    assert json.loads(raw)["error"] == "RuntimeError: the decision step broke"
    with read_only() as con:
        assert recent_runs(con)[0]["status"] == "error"  # not abandoned: it ended, and said why


def _runs_table(*runs: dict) -> str:
    buf = io.StringIO()
    print_runs(list(runs), Console(file=buf, width=120, color_system=None))
    return buf.getvalue()


def test_runs_shows_what_an_abandoned_run_owes_as_owed_not_failed() -> None:
    row = {"run_id": "dead", "kind": "live", "mode": "rules", "send": 300, "duration_s": 4.0}
    dead = {**row, "status": "abandoned", "delivered": 20, "not_delivered": 283, "owed": 280}
    (line,) = [ln for ln in _runs_table(dead).splitlines() if ln.lstrip().startswith("dead")]
    assert line.split()[4:] == ["300", "20", "3,", "280", "owed", "4s"]  # 3 dead letters, 280 owed
    partial = {
        **row,
        "run_id": "part",
        "status": "partial",
        "delivered": 20,
        "not_delivered": 280,
        "owed": 280,
    }
    (line,) = [ln for ln in _runs_table(partial).splitlines() if ln.lstrip().startswith("part")]
    assert line.split()[4:] == ["300", "20", "280", "4s"]  # a run that ended: its failed rows failed


class _Dest:
    """A destination that delivers the first `ok` rows of a request and fails the others transiently."""

    name, max_batch, secrets = "crm", 50, ()

    def __init__(self, ok: int) -> None:
        from activation.destinations.base import RateLimit

        self.ok, self.rate_limit = ok, RateLimit(max_requests=1000, window_s=1.0)

    def accepts(self, decision) -> bool:
        return True

    def record_key(self, decision) -> str:
        return decision.customer_id

    def build_payload(self, decision) -> dict:
        return {"customer_id": decision.customer_id}

    def send_batch(self, items):
        from activation.destinations.base import ItemResult

        return [
            ItemResult(decision_id=it.decision_id, outcome="ok" if i < self.ok else "transient", error="busy")
            for i, it in enumerate(items)
        ]

    def close(self) -> None:
        pass


def test_status_shows_an_abandoned_run_owing_nothing_once_replay_dlq_delivered_it() -> None:
    from datetime import UTC, datetime

    import duckdb

    from activation.delivery import deliver, replay_dead_letters
    from activation.run_log import sweep_dead_runs
    from activation.runs import owed
    from activation.settings import DeliverySettings
    from testing.factories import make_decision
    from warehouse.ops_tables import ensure_ops_tables

    as_of = datetime(2026, 1, 5, 9, tzinfo=UTC)
    decisions = [
        make_decision(decision_id=f"d{i}", run_id="dead", as_of=as_of, customer_id=f"C{i}", propensity=1.0)
        for i in range(5)
    ]
    settings = DeliverySettings(max_retries=0, backoff_base_s=0.001, seed=1)
    con = duckdb.connect()
    ensure_ops_tables(con)
    con.execute(
        "insert into ops.run_log (run_id, started_at, dry_run, mode, status, summary_json) "
        "values ('dead', ?, false, 'rules', 'running', '{}')",
        [as_of.replace(tzinfo=None)],
    )
    deliver(decisions, con=con, run_id="dead", dry_run=False, outbox_dir="/nonexistent",
            destinations=[_Dest(ok=2)], settings=settings)  # fmt: skip
    # 2 delivered, 3 left failed, and its process died before it wrote its status: replay-dlq notices
    # it, then re-sends what it owes
    sweep_dead_runs(con, noticed_by="replay-dlq")
    (before,) = recent_runs(con, 1)
    assert (before["status"], before["delivered"], before["owed"]) == ("abandoned", 2, 3)
    assert replay_dead_letters(con, [_Dest(ok=50)], settings=settings).ok
    (after,) = recent_runs(con, 1)
    assert (after["status"], after["delivered"], after["owed"]) == ("abandoned", 2, 0)
    buf = io.StringIO()
    print_status({"latest": after, "owed": owed(con)}, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    assert "2 rows delivered, 0 owed" in text and "nothing owed" in text, text

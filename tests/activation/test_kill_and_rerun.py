"""SIGKILL a live delivery mid-run, run again: every decision is held exactly once by every server and
the ledger has exactly one row per delivered decision per destination."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer

WORKER = Path(__file__).with_name("kill_worker.py")
REPO = Path(__file__).resolve().parents[2]
N = 120


def _env(hs: HubSpotServer, sf: SalesforceServer, wh: WebhookServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBA_")}
    env.update(
        PYTHONPATH=str(REPO),
        NBA_DESTINATIONS="hubspot,salesforce,webhook",
        NBA_HUBSPOT__TOKEN=hs.token,
        NBA_HUBSPOT__BASE_URL=hs.url,
        NBA_HUBSPOT__MAX_BATCH="10",
        NBA_SALESFORCE__INSTANCE_URL=sf.url,
        NBA_SALESFORCE__SESSION_ID=sf.session_id,
        NBA_SALESFORCE__CA_BUNDLE=sf.cert_path or "",
        NBA_SALESFORCE__MAX_BATCH="25",
        NBA_SALESFORCE__RATE_PER_S="1000",
        NBA_WEBHOOK__URL=f"{wh.url}/hooks/nba",
        NBA_WEBHOOK__SECRET=wh.secret,
        NBA_WEBHOOK__RATE_PER_S="1000",
        NBA_DELIVERY__BACKOFF_BASE_S="0.01",
    )
    return env


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_sigkill_mid_run_then_rerun_is_exactly_once(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db)).close()
    with (
        HubSpotServer(latency_ms=15, seed=1) as hs,
        SalesforceServer(latency_ms=15, seed=2) as sf,
        WebhookServer(latency_ms=5, seed=3) as wh,
    ):
        env = _env(hs, sf, wh)
        proc = subprocess.Popen([sys.executable, str(WORKER), str(db), str(N), "run-1"], env=env, cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        # kill while the webhook (the last destination, one request per decision) is half way
        assert _wait_for(lambda: wh.stats()["total_writes"] >= N // 2, timeout=60), proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert hs.stats()["unique_records"] == N and wh.stats()["unique_records"] < N
        second = subprocess.run([sys.executable, str(WORKER), str(db), str(N), "run-2"], env=env, cwd=REPO,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert second.returncode == 0, second.stderr[-2000:]
        for server in (hs, sf, wh):
            assert server.stats()["unique_records"] == N, server.name
        assert wh.stats()["unique_decisions"] == N
        assert sf.stats()["tasks"] == sum(1 for i in range(N) if i % 7 == 3)
    con = duckdb.connect(str(db))
    assert con.execute("select count(*) from ops.contact_ledger").fetchone()[0] == 3 * N
    assert (
        con.execute("select count(distinct (decision_id, destination)) from ops.contact_ledger").fetchone()[0]
        == 3 * N
    )
    assert (
        con.execute("select count(*) from ops.delivery_state where status <> 'delivered'").fetchone()[0] == 0
    )
    # the second run re-sent only what the first one had not confirmed
    delivered_twice = con.execute(
        "select count(*) from (select decision_id, destination from ops.delivery_log where status = 'delivered' "
        "group by all having count(*) > 1)"
    ).fetchone()[0]
    assert delivered_twice == 0

"""Issue 14's scenarios at demo scale through the CLI (subprocesses), counted at the local servers:
a wrong HubSpot token then the right one, every webhook send failing (LIMIT 25), a same-day rerun with
SUPPRESS_HOURS=0. Prints JSON. The warehouse file is copied for each scenario.

    .venv/bin/python tests/run/issue14_scenarios.py . warehouse/dbt/warehouse.duckdb

The first argument is the checkout whose code runs (a copy of another commit measures it "before";
copy this checkout's testing/local_servers and tests/run/run_helpers.py into it to count the same).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CLI = ["-m", "activation.cli", "activate", "--mode", "rules", "--no-progress", "--output", "json", "--live"]


def main() -> None:
    root, pristine = Path(sys.argv[1]).resolve(), sys.argv[2]
    sys.path[:0] = [str(root), str(root / "tests" / "run")]
    import duckdb
    from run_helpers import Servers, server_env

    from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer

    def fresh() -> Path:
        db = Path(tempfile.mkdtemp()) / "w.duckdb"
        shutil.copy(pristine, db)
        return db

    def q(db: Path, sql: str) -> list[tuple]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def env_for(s: Servers, db: Path) -> dict[str, str]:
        return {**os.environ, **server_env(s), "NBA_DUCKDB_PATH": str(db), "PYTHONPATH": str(root),
                "NBA_OUTBOX_DIR": str(db.parent / "outbox")}  # fmt: skip

    def run(env: dict[str, str], *extra: str) -> tuple[int, list[str]]:
        p = subprocess.run([sys.executable, *CLI, *extra], env=env, cwd=root, capture_output=True, text=True)
        return p.returncode, p.stderr.strip().splitlines()[:6]

    def stats(s: Servers) -> dict[str, Any]:
        keys = ("unique_records", "stored_decisions", "changed_decisions", "customers_with_several_decisions")
        return {x.name: {k: x.stats().get(k) for k in keys} for x in s.all()}

    out: dict[str, Any] = {}
    with HubSpotServer() as hs, SalesforceServer() as sf, WebhookServer() as wh:
        s, db = Servers(hs, sf, wh), fresh()
        first = run({**env_for(s, db), "NBA_HUBSPOT__TOKEN": "wrong-token"})
        hubspot_after_first = hs.stats()["unique_records"]
        out["wrong_token_then_right"] = {
            "run1": first, "hubspot_after_run1": hubspot_after_first, "run2": run(env_for(s, db)),
            "servers": stats(s), "run_log": q(db, "select status from ops.run_log order by finished_at"),
        }  # fmt: skip
    with HubSpotServer() as hs, SalesforceServer() as sf, WebhookServer(error_rate=1.0) as wh:
        s, db = Servers(hs, sf, wh), fresh()
        out["every_webhook_send_failing"] = {
            "run1": run(env_for(s, db), "--limit", "25"),
            "sends": q(db, "select count(*) from ops.decision_log where status = 'send'")[0][0],
            "run_log": q(db, "select status from ops.run_log"),
        }
    with HubSpotServer() as hs, SalesforceServer() as sf, WebhookServer() as wh:
        s, db = Servers(hs, sf, wh), fresh()
        env = env_for(s, db)
        out["same_day_rerun_suppress_hours_0"] = {
            "run1": run(env), "run2": run(env, "--suppress-hours", "0", "--force"),
            "webhook_events": len(wh.events), "webhook_decision_ids": len({e["decision_id"] for e in wh.events.values()}),
            "servers": stats(s),
            "ledger_rows_distinct": q(db, "select count(*), count(distinct (decision_id, destination)) from ops.contact_ledger"),
        }  # fmt: skip
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()

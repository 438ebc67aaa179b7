"""Chaos drill: live runs of `nba-activate` against the local servers with injected faults and a kill -9
mid-delivery, then plain reruns until one exits 0; everything counted at the servers.

    .venv/bin/python tests/run/chaos_drill.py [--warehouse FILE] [--error-rate 0.2] [--rate-429 0.1]
        [--partial 0.1] [--max-retries 4] [--kill-on webhook] [--kill-after 60] [--latency-ms 20] [--seed 1]

Without --warehouse it builds the demo warehouse (5,000 customers, seed 42) in a temporary folder
with real dbt first (about a minute). The warehouse file is copied: the original is not touched.
The oracle is exact: every send decision stored once by every server, no decision stored with two
payloads, no customer sent two decisions, one ledger row per (decision, destination).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_helpers import ROOT, Servers, server_env  # noqa: E402

from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer  # noqa: E402

CLI = [sys.executable, "-m", "activation.cli", "activate", "--mode", "rules", "--live", "--no-progress", "--output", "json"]  # fmt: skip


def _q(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _warehouse(arg: str | None, tmp: Path) -> tuple[Path, dict[str, str]]:
    if arg:
        db = tmp / "warehouse.duckdb"
        shutil.copy(arg, db)
        return db, {"NBA_DUCKDB_PATH": str(db)}
    from testing.demo_warehouse import build_demo_warehouse

    demo = build_demo_warehouse(tmp / "demo")
    return demo.duckdb_path, demo.env


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--warehouse", default=None, help="a built warehouse file to copy (default: build the demo)"
    )
    p.add_argument("--error-rate", type=float, default=0.2)
    p.add_argument("--rate-429", type=float, default=0.1)
    p.add_argument(
        "--partial", type=float, default=0.1, help="share of rows failing inside 207/collection answers"
    )
    p.add_argument("--max-retries", type=int, default=4, help="NBA_DELIVERY__MAX_RETRIES")
    p.add_argument(
        "--kill-after", type=int, default=60, help="kill -9 the first run after N writes at --kill-on"
    )
    p.add_argument("--kill-on", choices=("hubspot", "salesforce", "webhook"), default="webhook")
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-runs", type=int, default=8)
    args = p.parse_args()
    knobs = {
        "error_rate": args.error_rate,
        "rate_429": args.rate_429,
        "partial_failure_rate": args.partial,
        "latency_ms": args.latency_ms,
        "retry_after_s": 0.05,
    }
    tmp = Path(tempfile.mkdtemp(prefix="nba-chaos-"))
    db, wh_env = _warehouse(args.warehouse, tmp)
    with (
        HubSpotServer(seed=args.seed, **knobs) as hs,
        SalesforceServer(seed=args.seed + 1, **knobs) as sf,
        WebhookServer(seed=args.seed + 2, **knobs) as wh,
    ):
        s = Servers(hs, sf, wh)  # type: ignore[arg-type]
        env = {**os.environ, **wh_env, **server_env(s), "PYTHONPATH": str(ROOT)}
        env.update(NBA_OUTBOX_DIR=str(tmp / "outbox"), NBA_DELIVERY__MAX_RETRIES=str(args.max_retries))
        runs: list[dict] = []
        proc = subprocess.Popen(CLI, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 600
        while (
            wh.stats()["total_writes"] < args.kill_after
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.005)
        killed = proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL) if killed else None
        proc.communicate()
        runs.append({"run": 1, "exit": "SIGKILL" if killed else proc.returncode, "status": "-",
                     "writes_at_kill": {srv.name: srv.stats()["total_writes"] for srv in s.all()}})  # fmt: skip
        (first_run,) = _q(db, "select run_id from ops.decision_log group by run_id")[0]
        for n in range(2, args.max_runs + 1):
            done = subprocess.run(CLI, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
            out = json.loads(done.stdout) if done.stdout.strip() else {}
            runs.append(
                {
                    "run": n,
                    "exit": done.returncode,
                    "status": out.get("status"),
                    "new_sends": out.get("counts", {}).get("send"),
                    "retried": {k: v.get("retried") for k, v in out.get("destinations", {}).items()},
                    "delivered": {k: v.get("delivered") for k, v in out.get("destinations", {}).items()},
                    "failed": {k: v.get("failed") for k, v in out.get("destinations", {}).items()},
                }
            )
            if done.returncode == 0:
                break
        sends = _q(db, f"select decision_id, channel, segment, template_id from ops.decision_log where run_id = '{first_run}' and status = 'send'")  # fmt: skip
        stats = {srv.name: srv.stats() for srv in s.all()}
    ids = {r[0] for r in sends}
    tasks = sum(
        1
        for _, _, seg, tpl in sends
        if seg == "churn_rescue_nps" and tpl in ("cs_followup", "cs_followup_offer")
    )
    report = {
        "knobs": knobs
        | {"max_retries": args.max_retries, "kill_after": f"{args.kill_after} {args.kill_on} writes"},
        "runs": runs,
        "send_decisions": len(ids),
        "servers": {
            name: {
                k: st.get(k)
                for k in (
                    "stored_decisions",
                    "changed_decisions",
                    "customers_with_several_decisions",
                    "unique_records",
                    "total_writes",
                    "api_requests",
                    "injected_errors",
                    "injected_429",
                    "enrollments",
                    "tasks",
                    "changed_tasks",
                    "replays",
                    "unique_decisions",
                )  # fmt: skip
                if k in st
            }
            for name, st in stats.items()
        },
        "expected": {
            "stored_decisions": len(ids),
            "enrollments": sum(1 for r in sends if r[1] == "email"),
            "tasks": tasks,
            "ledger_rows": 3 * len(ids),
        },
        "ledger_rows": _q(db, "select count(*) from ops.contact_ledger")[0][0],
        "ledger_distinct": _q(
            db, "select count(distinct (decision_id, destination)) from ops.contact_ledger"
        )[0][0],
        "delivery_state": dict(_q(db, "select status, count(*) from ops.delivery_state group by status")),
        "run_log": _q(db, "select status, count(*) from ops.run_log group by status order by status"),
    }
    ok = (
        all(
            v["stored_decisions"] == len(ids)
            and v["changed_decisions"] == 0
            and v["customers_with_several_decisions"] == 0
            for v in report["servers"].values()
        )  # fmt: skip
        and report["ledger_rows"] == report["ledger_distinct"] == 3 * len(ids)
        and stats["hubspot"]["enrollments"] == report["expected"]["enrollments"]
        and stats["salesforce"]["tasks"] == tasks
        and stats["webhook"]["unique_decisions"] == stats["webhook"]["unique_records"] == len(ids)
    )
    report["exactly_once"] = ok
    print(json.dumps(report, indent=2, default=str))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

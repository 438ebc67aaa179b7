"""Deferred sends on the whole demo: how many decisions quiet hours defer in one live run, and what the
next live run past their window does with each (sent, closed with which reason, still owed).

Two live runs of `make activate DRY_RUN=0 SEGMENT=all` (rules), a day apart, on a private copy of the
demo warehouse, against the three local destination servers (127.0.0.1):

    .venv/bin/python bench/bench_deferred.py [--first 2026-11-27T14:00:00+00:00] [--hours 24]

The issue's target: 0 deferred decisions left unsent after the next run past their window (before
deferred sends: 76 of 599 stayed deferred for ever).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing.local_servers import HubSpotServer, SalesforceServer, WebhookServer  # noqa: E402
from warehouse.paths import duckdb_path  # noqa: E402


def server_env(
    hubspot: HubSpotServer, salesforce: SalesforceServer, webhook: WebhookServer
) -> dict[str, str]:
    return {
        "NBA_DESTINATIONS": "hubspot,salesforce,webhook",
        "NBA_HUBSPOT__TOKEN": hubspot.token,
        "NBA_HUBSPOT__BASE_URL": hubspot.url,
        "NBA_SALESFORCE__INSTANCE_URL": salesforce.url,
        "NBA_SALESFORCE__SESSION_ID": salesforce.session_id,
        "NBA_SALESFORCE__CA_BUNDLE": salesforce.cert_path,
        "REQUESTS_CA_BUNDLE": salesforce.cert_path,
        "NBA_SALESFORCE__RATE_PER_S": "1000",
        "NBA_WEBHOOK__URL": f"{webhook.url}/hooks/nba",
        "NBA_WEBHOOK__SECRET": webhook.secret,
        "NBA_WEBHOOK__RATE_PER_S": "1000",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", default="2026-11-27T14:00:00+00:00", help="AS_OF of the first live run")
    ap.add_argument("--hours", type=float, default=24.0, help="hours between the two runs")
    args = ap.parse_args()
    first = datetime.fromisoformat(args.first)
    second = first + timedelta(hours=args.hours)
    with tempfile.TemporaryDirectory(prefix="nba-bench-deferred-") as tmp, ExitStack() as stack:
        db = Path(tmp) / "warehouse.duckdb"
        shutil.copy(duckdb_path(), db)
        servers = [
            stack.enter_context(HubSpotServer(seed=11)),
            stack.enter_context(SalesforceServer(seed=12)),
            stack.enter_context(WebhookServer(seed=13)),
        ]
        os.environ.update(server_env(*servers))  # type: ignore[arg-type]
        os.environ.update(
            {
                "NBA_DUCKDB_PATH": str(db),
                "NBA_OUTBOX_DIR": f"{tmp}/outbox",
                "NBA_REPORTS_DIR": f"{tmp}/reports",
            }
        )
        from activation.run import run_activation
        from activation.settings import ActivateSettings
        from core.config import load_settings

        def live(as_of: datetime):  # type: ignore[no-untyped-def]
            return run_activation(
                load_settings(ActivateSettings, dry_run=False, force=True, segment="all", as_of=as_of)
            )

        one = live(first)
        con = duckdb.connect(str(db), read_only=True)
        queued = con.execute("select count(*), max(send_at) from ops.deferred_sends").fetchone()
        con.close()
        print(
            f"run 1 (AS_OF {first:%Y-%m-%d %H:%M} UTC): {sum(one.counts.values())} decisions, "
            f"{one.counts.get('deferred', 0)} deferred, {queued[0]} queued, the last send-at {queued[1]}"
        )
        two = live(second)
        con = duckdb.connect(str(db), read_only=True)
        rows = con.execute(
            "select q.decision_id, q.closed_at is not null, coalesce(q.close_reason, ''), "
            "(select count(*) from ops.delivery_state s where s.decision_id = q.decision_id "
            " and s.status = 'delivered') from ops.deferred_sends q where q.decided_run_id = ?",
            [one.run_id],
        ).fetchall()
        con.close()
        sent = sum(1 for r in rows if r[3] > 0)
        closed = Counter(r[2].split(":")[0] for r in rows if r[1] and r[3] == 0)
        owed = sum(1 for r in rows if not r[1] and r[3] == 0)
        print(
            f"run 2 (AS_OF {second:%Y-%m-%d %H:%M} UTC, past every window): of run 1's {len(rows)} deferred "
            f"decisions, {sent} delivered, {sum(closed.values())} closed unsent, {owed} still owed; "
            f"summary: {two.deferred_sends}"
        )
        for reason, n in closed.most_common():
            print(f"   closed: {n} x {reason}")


if __name__ == "__main__":
    main()

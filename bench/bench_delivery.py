"""Sustained delivery rate against a local HubSpot with a declared burst limit, side by side with that
limit, plus the 429s we caused (target: ratio >= 0.9x, zero 429s).

HubSpot's Free/Starter burst limit is 100 requests / 10 s (10 req/s). The bench keeps that rate but
scales the window down (default 20 requests / 2 s) so that ~30 s span many windows. "sustained" is
the steady state: requests after the first window's burst over the time between the server's first and
last request; "end-to-end" divides all requests by the whole deliver() call (item building and
warehouse writes included). A webhook (one request per decision) runs after it, briefly.

    .venv/bin/python bench/bench_delivery.py [--seconds 30] [--limit 20] [--window 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activation.delivery import deliver  # noqa: E402
from activation.destinations.hubspot import (
    HubSpotDestination,  # noqa: E402
    HubSpotSettings,  # noqa: E402
)
from activation.destinations.webhook import (
    WebhookDestination,  # noqa: E402
    WebhookSettings,  # noqa: E402
)
from activation.settings import DeliverySettings  # noqa: E402
from core.contracts import Decision, stable_hash  # noqa: E402
from testing.factories import make_decision  # noqa: E402
from testing.local_servers import HubSpotServer, WebhookServer  # noqa: E402
from warehouse.ops_tables import ensure_ops_tables  # noqa: E402

AS_OF = datetime(2026, 1, 5, 9, tzinfo=UTC)


def decisions(n: int) -> list[Decision]:
    return [
        make_decision(
            decision_id=stable_hash(["bench", i]),
            run_id="bench",
            as_of=AS_OF,
            customer_id=f"B{i:07d}",
            discount_pct=10.0,
            message="Hi there, here is 10% off your next order.",
            context_hash="bench",
        )
        for i in range(n)
    ]


def run_one(name: str, server, dest, n: int, db: Path, settings: DeliverySettings) -> dict:
    con = duckdb.connect(str(db))
    ensure_ops_tables(con)
    started = time.monotonic()
    summary = deliver(decisions(n), con=con, run_id=f"bench-{name}", dry_run=False, outbox_dir=db.parent,
                      destinations=[dest], settings=settings)  # fmt: skip
    elapsed = time.monotonic() - started
    con.close()
    stats = server.stats()
    ds = summary.destinations[dest.name]
    declared = dest.rate_limit.per_second
    # steady state: the requests after the first window's burst, over the time they took
    span = stats["last_api_at"] - stats["first_api_at"]
    measured = (ds.requests - dest.rate_limit.max_requests) / span
    return {
        "destination": name,
        "declared_rps": declared,
        "measured_rps": measured,
        "ratio": measured / declared,
        "server_429": stats["declared_limit_429"],
        "client_429": ds.rate_limited,
        "peak_in_window": stats["peak_in_window"],
        "limit": server.knobs.rate_limit,
        "end_to_end_rps": ds.requests / elapsed,
        "rows_per_s": ds.delivered / elapsed,
        "delivered": ds.delivered,
        "unique_at_server": stats["unique_records"],
        "seconds": elapsed,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--limit", type=int, default=20, help="declared requests per window")
    p.add_argument("--window", type=float, default=2.0, help="declared window, seconds")
    p.add_argument("--webhook-rps", type=int, default=50, help="declared webhook rate (0: skip)")
    p.add_argument("--webhook-seconds", type=float, default=6.0)
    args = p.parse_args()
    settings = DeliverySettings()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        rps = args.limit / args.window
        n = int(rps * args.seconds * 100)  # full batches of 100
        with HubSpotServer(rate_limit=args.limit, rate_window_s=args.window) as hs:
            dest = HubSpotDestination(
                HubSpotSettings(
                    token=hs.token, base_url=hs.url, rate_per_10s=args.limit, rate_window_s=args.window
                )
            )
            rows.append(run_one("hubspot", hs, dest, n, db, settings))
        if args.webhook_rps:
            with WebhookServer(rate_limit=args.webhook_rps, rate_window_s=1.0) as wh:
                hook = WebhookDestination(
                    WebhookSettings(url=f"{wh.url}/hooks/nba", secret=wh.secret, rate_per_s=args.webhook_rps)
                )
                rows.append(
                    run_one("webhook", wh, hook, int(args.webhook_rps * args.webhook_seconds), db, settings)
                )
    print(f"{'destination':<12}{'declared req/s':>15}{'sustained req/s':>16}{'ratio':>8}{'429s caused':>13}"
          f"{'peak/limit':>12}{'end-to-end req/s':>17}{'rows/s':>8}{'delivered':>11}{'seconds':>9}")  # fmt: skip
    for r in rows:
        print(
            f"{r['destination']:<12}{r['declared_rps']:>15.2f}{r['measured_rps']:>16.2f}{r['ratio']:>7.2f}x"
            f"{r['server_429']:>13}{str(r['peak_in_window']) + '/' + str(r['limit']):>12}"
            f"{r['end_to_end_rps']:>17.2f}{r['rows_per_s']:>8.0f}"
            f"{r['delivered']:>11}{r['seconds']:>9.1f}"
        )
        assert r["delivered"] == r["unique_at_server"], (
            "the server must hold every delivered row exactly once"
        )


if __name__ == "__main__":
    main()

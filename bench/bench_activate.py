"""Rules mode at scale: a dry run end to end (contexts as Arrow -> eligibility -> rules -> guardrails ->
decision log -> outbox) against a warehouse of N customers, side by side with the floor: one DuckDB
SQL statement that assigns the same rule actions (template, channel, discount) to the same customers.

    .venv/bin/python bench/bench_activate.py [--customers 1000000] [--root /tmp/nba-bench-1m]

Targets: the 1,000,000-customer dry run within 3 minutes on 2 cores (issue 5); context -> decision ->
guardrails within 60 s (issue 3). The warehouse is built once under --root and reused.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOOR_SQL = """
create or replace temp table floor_actions as
select s.customer_id, s.segment,
  case s.segment
    when 'high_value_lapse_risk' then 'winback_soft'
    when 'new_users_first_week_intent' then 'onboarding_tips'
    else 'cs_followup_offer' end as template_id,
  case when c.consent_email then 'email' when c.consent_sms then 'sms' when c.consent_push then 'push' end as channel,
  case s.segment when 'new_users_first_week_intent' then 0 else least(5, 10) end as discount_pct,
  'Hi ' || c.first_name || ', we miss you' as message
from main.mart_marketing__segment_scores s
join main.mart_marketing__customer_360 c using (customer_id)
where s.segment is not null and not c.is_globally_suppressed
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--root", type=Path, default=None)
    args = ap.parse_args()
    root = args.root or Path(f"/tmp/nba-bench-{args.customers}")

    import duckdb

    from testing.demo_warehouse import build_demo_warehouse, demo_layout

    demo = demo_layout(root, customers=args.customers)
    if not demo.duckdb_path.exists():
        t0 = time.perf_counter()
        demo = build_demo_warehouse(root, customers=args.customers)
        print(f"built the {args.customers:,}-customer warehouse in {time.perf_counter() - t0:.0f}s (once)")
    os.environ.update(demo.env)
    os.environ["NBA_OUTBOX_DIR"] = str(root / "outbox")

    con = duckdb.connect(str(demo.duckdb_path))
    segmented = con.execute(
        "select count(*) from main.mart_marketing__segment_scores where segment is not null"
    ).fetchall()[0][0]

    t0 = time.perf_counter()
    con.execute(FLOOR_SQL)
    floor_s = time.perf_counter() - t0
    floor_rows = con.execute("select count(*) from floor_actions").fetchall()[0][0]

    from activation.run import new_run_id, run_activation
    from activation.settings import ActivateSettings
    from agent.context import data_as_of, load_contact_history, load_contexts, reference_for
    from agent.pipeline import decide
    from core.config import load_settings

    settings = load_settings(ActivateSettings, mode="rules", segment="all")
    t0 = time.perf_counter()
    contexts = load_contexts(con)
    history = load_contact_history(con)
    ref = reference_for(con)
    t_ctx = time.perf_counter() - t0
    t0 = time.perf_counter()
    decided, _ = decide(contexts, history, settings, run_id=new_run_id(), as_of=data_as_of(con), ref=ref)
    t_dec = time.perf_counter() - t0
    con.close()

    t0 = time.perf_counter()
    summary = run_activation(settings)
    t_run = time.perf_counter() - t0

    core = t_ctx + t_dec
    print(
        f"customers: {args.customers:,}   segmented: {segmented:,}   decisions: {len(decided):,} "
        f"(sends {summary.counts['send']:,})"
    )
    print(f"floor: one DuckDB statement assigning the rule actions : {floor_s:7.2f}s  ({floor_rows:,} rows)")
    print(
        f"ours: contexts as Arrow -> pydantic ({t_ctx:.2f}s) + eligibility/rules/guardrails ({t_dec:.2f}s)"
        f" = {core:7.2f}s   ratio to floor {core / floor_s:6.1f}x   target <= 60s: {'MET' if core <= 60 else 'NOT MET'}"
    )
    print(
        f"ours: full dry run (decide + decision log + outbox of 3 destinations): {t_run:7.2f}s   "
        f"target <= 180s: {'MET' if t_run <= 180 else 'NOT MET'}"
    )
    print(f"decisions/s (full dry run): {len(decided) / t_run:,.0f}   outbox: {summary.outbox}")


if __name__ == "__main__":
    main()

"""Synthetic outcomes for a run's decisions, drawn from the generator's ground truth.

In production, outcomes come from order data joined to the decision log. In this synthetic world the
generator knows how every customer responds to every action, so the demo can close the loop: a
treatment decision that was sent converts with the true probability of its action; a holdout customer
converts with their organic (untouched) probability, `warehouse.truth.organic_reward`. The draws land
in ops.decision_outcomes, where the dbt mart `mart_marketing__holdout_lift` turns them into
treatment-vs-holdout lift per segment.
Policies never read this; it runs after decisions are final.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.errors import WarehouseError
from warehouse.ops_tables import insert_atomically
from warehouse.truth import DISCOUNT_COST_PER_PCT, expected_reward, load_truth, not_in_truth, organic_reward


def simulate_outcomes(con: duckdb.DuckDBPyConnection, run_id: str | None = None, *, seed: int = 0) -> int:
    """Draw outcomes for the treatment sends and holdouts of `run_id` (default: the latest run)."""
    if run_id is None:
        rows = con.execute(  # the latest run that ended by itself (not running, abandoned, stopped)
            "select run_id from ops.run_log where status not in ('running', 'abandoned', 'error', 'refused') "
            "order by started_at desc limit 1"
        ).fetchall()
        if not rows:
            raise WarehouseError("no run in ops.run_log: run `make activate` first")
        run_id = rows[0][0]
    decisions = con.execute(
        "select decision_id, customer_id, arm, status, template_id, discount_pct from ops.decision_log "
        "where run_id = ? and ((arm = 'treatment' and status = 'send') or (arm = 'holdout' and status = 'holdout'))",
        [run_id],
    ).fetchall()
    if not decisions:
        return 0
    params = load_truth().params
    index = {cid: i for i, cid in enumerate(params.column("customer_id").to_pylist())}
    rows = pa.Table.from_pylist(
        [
            {"decision_id": d[0], "customer_id": d[1], "arm": d[2], "template_id": d[4], "discount_pct": d[5]}
            for d in decisions
        ]
    )
    ids = rows.column("customer_id").to_pylist()
    missing = [c for c in ids if c not in index]
    if missing:
        raise not_in_truth(missing)
    take = params.take(pa.array([index[c] for c in ids]))
    treated = np.array([a == "treatment" for a in rows.column("arm").to_pylist()])
    order_value = take.column("expected_order_value").to_numpy().astype(np.float64)
    discount = pc.fill_null(rows.column("discount_pct"), 0.0).to_numpy().astype(np.float64)
    conversion, _ = organic_reward(take)  # a holdout is left alone: the truth's no-contact response
    if treated.any():
        templates = np.array(rows.column("template_id").to_pylist(), dtype=object)
        conv_t, _ = expected_reward(take.filter(pa.array(treated)), templates[treated], discount[treated])
        conversion[treated] = conv_t
    rng = np.random.default_rng(seed)
    converted = rng.random(len(conversion)) < conversion
    revenue = np.where(
        converted, order_value * (1.0 - DISCOUNT_COST_PER_PCT * np.where(treated, discount, 0)), 0.0
    )
    out = pa.table(
        {
            "decision_id": rows.column("decision_id"),
            "customer_id": rows.column("customer_id"),
            "converted_14d": pa.array(converted),
            "revenue_90d": pa.array(np.round(revenue, 2)),
            "observed_at": pa.array(
                [datetime.now(UTC).replace(tzinfo=None)] * len(converted), pa.timestamp("us")
            ),
        }
    )
    return insert_atomically(con, "ops.decision_outcomes", out, replace_on="decision_id")

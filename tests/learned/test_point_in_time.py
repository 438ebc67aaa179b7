"""Training rows are featurised as of their touch: a fact dated after the touch cannot change the row,
the same fact dated before it does; the as-of block reproduces the marts at the data's date."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from agent.learned.actions import default_catalog
from agent.learned.data import logged_touches
from agent.learned.features import (
    CUSTOMER_FEATURES,
    PAIR_FEATURES,
    FeatureParams,
    customer_matrix,
    customer_table,
    fit_priors,
    load_customer_features,
    pair_matrix,
    row_history,
)
from agent.learned.model import LearnerParams, training_rows
from agent.learned.point_in_time import CustomerTimeline

FACT_TABLES = ("stg_raw__orders", "stg_raw__web_events", "stg_raw__nps_responses")


def _row_features(con: duckdb.DuckDBPyConnection, customer: str, at: datetime, priors) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Every model feature of the training row of `customer`'s touch at `at`."""
    cat, fp = default_catalog(), FeatureParams()
    cf = load_customer_features(con, customer_ids=[customer])
    touches = logged_touches(con, customer_ids=[customer])
    t = training_rows(touches, cf, cat, LearnerParams(max_rows=10**9))
    assert len(t.rows) == touches.num_rows  # one row per touch, in the touches' order
    i = touches.column("touched_at").to_pylist().index(at)
    one = t.take(np.array([i]))
    x = np.concatenate(
        [
            customer_matrix(cf, priors, fp, one.rows, catalog=cat, base=one.base, history=one.history)[0],
            pair_matrix(
                cf, priors, fp, one.rows, one.actions, catalog=cat, base=one.base, history=one.history
            )[0],
        ]
    )
    return dict(zip(CUSTOMER_FEATURES + PAIR_FEATURES, x.tolist(), strict=True))


def _add_facts(con: duckdb.DuckDBPyConnection, customer: str, when: datetime, touch: dict, tag: int) -> None:  # type: ignore[type-arg]
    """An order, a web session with a product view, a detractor NPS answer and a converted campaign
    touch of `customer`, all dated `when`."""
    con.execute(
        "insert into main.stg_raw__orders values (?, ?, ?, 'completed', 'web', 480.0, true)",
        [9_000_000 + tag, customer, when],
    )
    con.execute(
        "insert into main.stg_raw__web_events values (?, ?, ?, 'session_start', ?, null), "
        "(?, ?, ?, 'product_view', ?, 'P0001')",
        [9_000_000 + tag, customer, 9_000_000 + tag, when, 9_100_000 + tag, customer, 9_000_000 + tag, when],
    )
    con.execute(
        "insert into main.stg_raw__nps_responses values (?, ?, ?, 0, 'no', 'detractor')",
        [9_000_000 + tag, customer, when],
    )
    con.execute(
        "insert into main.mart_marketing__campaign_history values (?, ?, ?, ?, ?, ?, ?, true, 999.0, ?)",
        [f"TX{tag}", customer, when, touch["template_id"], touch["channel"], touch["discount_pct"],
         touch["propensity"], touch["segment"]],
    )  # fmt: skip


def test_a_fact_after_the_touch_cannot_change_its_row_and_the_same_fact_before_it_does(
    warehouse_copy,
) -> None:  # type: ignore[no-untyped-def]
    con = duckdb.connect(str(warehouse_copy))
    try:
        for view in FACT_TABLES:  # the staging views over Parquet become tables a test can add to
            con.execute(f"create table main.{view}_t as select * from main.{view}")
            con.execute(f"drop view main.{view}")
            con.execute(f"alter table main.{view}_t rename to {view}")
        web_start = con.execute("select min(event_at) from main.stg_raw__web_events").fetchall()[0][0]
        # a segmented customer's touch whose 30-day web window the warehouse covers, not their last
        touch = (
            con.sql(
                "select * from main.mart_marketing__campaign_history h where segment = 'high_value_lapse_risk' "
                "and touched_at >= ? and touched_at < (select max(touched_at) from "
                "main.mart_marketing__campaign_history g where g.customer_id = h.customer_id) "
                "order by customer_id, touched_at limit 1",
                params=[web_start + timedelta(days=40)],
            )
            .to_arrow_table()
            .to_pylist()[0]
        )
        customer, at = touch["customer_id"], touch["touched_at"]
        cf0 = load_customer_features(con)
        priors = fit_priors(cf0.n, cf0.conv, cf0.rev)  # population rates: held fixed here
        before = _row_features(con, customer, at, priors)

        _add_facts(con, customer, at + timedelta(days=1), touch, tag=1)
        assert _row_features(con, customer, at, priors) == before  # nothing dated after the touch counts

        _add_facts(con, customer, at - timedelta(days=2), touch, tag=2)
        after = _row_features(con, customer, at, priors)
    finally:
        con.close()
    for name in ("log_orders_count", "log_lifetime_revenue", "log_sessions_7d", "log_product_views_30d",
                 "h_log_n", "h_rev"):  # fmt: skip
        assert after[name] > before[name], name
    assert after["has_latest_nps_score"] == 1.0 and after["log_latest_nps_score"] == 0.0
    assert after["log_recency_days"] < before["log_recency_days"]


def test_as_of_the_data_date_the_block_is_the_marts(demo_data) -> None:  # type: ignore[no-untyped-def]
    """The as-of computation reproduces customer_360 + segment_scores at the data's date (every
    column; the RFM sample is the whole population of the demo), so its definitions are the dbt ones."""
    con = duckdb.connect(str(demo_data.warehouse.duckdb_path), read_only=True)
    try:
        mart = customer_table(con)
        ids = mart.column("customer_id").to_pylist()
        as_of = con.execute("select max(as_of_date) from main.mart_marketing__customer_360").fetchall()[0][0]
        table = CustomerTimeline.load(con, ids).base_table(
            np.array(ids, dtype=object),
            np.full(len(ids), np.datetime64(as_of, "us") + np.timedelta64(9, "h")),
        )
    finally:
        con.close()
    assert table.column_names == mart.column_names
    for name in mart.column_names:
        a, b = mart.column(name).to_pylist(), table.column(name).to_pylist()
        if isinstance(a[0], float) or isinstance(b[0], float):
            np.testing.assert_allclose(
                np.array(a, dtype=float), np.array(b, dtype=float), rtol=1e-9, err_msg=name
            )
        else:
            assert a == b, name


def test_row_history_sums_only_the_customers_earlier_touches(demo_data) -> None:  # type: ignore[no-untyped-def]
    cf, cat = demo_data.cf, default_catalog()
    touches = demo_data.touches
    rng = np.random.default_rng(0)
    known = np.flatnonzero(cf.rows_of(touches.column("customer_id")) >= 0)  # cf: segmented customers
    pick = np.sort(rng.choice(known, 300, replace=False))
    sample = touches.take(pa.array(pick))
    rows = cf.rows_of(sample.column("customer_id"))
    at = sample.column("touched_at").to_numpy()
    h = row_history(cf, touches, rows, at, cat)
    ids = np.asarray(touches.column("customer_id").to_pylist(), dtype=object)
    ts = touches.column("touched_at").to_numpy()
    conv = touches.column("converted_14d").to_numpy(zero_copy_only=False)
    rev = touches.column("revenue_90d").to_numpy()
    for i, (c, t) in enumerate(zip(sample.column("customer_id").to_pylist(), at, strict=True)):
        earlier = (ids == c) & (ts < t)
        assert h.n[i, 0] == earlier.sum()
        assert h.conv[i, 0] == conv[earlier].sum()
        assert h.rev[i, 0] == pytest.approx(rev[earlier].sum(), rel=1e-5)
    # every key type partitions the same touches: its counts add up to the overall count
    assert np.allclose(h.n[:, 1:4].sum(axis=1), h.n[:, 0])

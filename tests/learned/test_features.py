"""The feature builder: history from touches before the cut-off only, leave-one-out training rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent.learned.actions import allowed_mask, default_catalog
from agent.learned.data import TOUCH_SCHEMA, campaign_history, logged_touches
from agent.learned.features import (
    LOO,
    FeatureParams,
    build_customer_features,
    fit_priors,
    pair_matrix,
    touch_actions,
)
from evals.actions import default_action_space


def _cutoff(touches: pa.Table) -> datetime:
    ts = touches.column("touched_at")
    mid = pc.min(ts).as_py() + (pc.max(ts).as_py() - pc.min(ts).as_py()) / 2
    return mid.replace(tzinfo=UTC)


def test_history_never_reads_touches_after_the_cutoff(demo_data) -> None:  # type: ignore[no-untyped-def]
    touches, cutoff = demo_data.touches, _cutoff(demo_data.touches)
    before = build_customer_features(demo_data.customers, touches, cutoff=cutoff)
    # rewrite every touch at or after the cut-off (outcomes, actions) and add more: nothing changes
    ts = touches.column("touched_at")
    late = pc.greater_equal(ts, pa.scalar(cutoff.replace(tzinfo=None), pa.timestamp("us")))
    assert 0 < pc.sum(late).as_py() < touches.num_rows
    rng = np.random.default_rng(0)
    n = touches.num_rows
    forged = touches.set_column(
        touches.schema.get_field_index("converted_14d"),
        "converted_14d",
        pc.if_else(late, pa.array(rng.random(n) < 0.9), touches.column("converted_14d")),
    ).set_column(
        touches.schema.get_field_index("revenue_90d"),
        "revenue_90d",
        pc.if_else(late, pa.array(rng.random(n) * 1e4), touches.column("revenue_90d")),
    )
    extra = forged.filter(late).slice(0, 500)
    forged = pa.concat_tables([forged, extra])
    after = build_customer_features(demo_data.customers, forged, cutoff=cutoff)
    for name in ("n", "conv", "rev", "base"):
        np.testing.assert_array_equal(getattr(before, name), getattr(after, name))
    # and the history does change when the cut-off moves past those touches
    full = build_customer_features(demo_data.customers, forged, cutoff=None)
    assert full.n.sum() > before.n.sum()


def test_sql_reader_filters_before_the_cutoff(demo_warehouse) -> None:  # type: ignore[no-untyped-def]
    con = duckdb.connect(str(demo_warehouse.duckdb_path), read_only=True)
    try:
        allt = campaign_history(con)
        cutoff = _cutoff(allt)
        early = logged_touches(con, before=cutoff)
    finally:
        con.close()
    assert early.schema.equals(TOUCH_SCHEMA, check_metadata=False)
    assert 0 < early.num_rows < allt.num_rows
    assert pc.max(early.column("touched_at")).as_py() < cutoff.replace(tzinfo=None)
    expected = pc.sum(
        pc.less(allt.column("touched_at"), pa.scalar(cutoff.replace(tzinfo=None), pa.timestamp("us")))
    )
    assert early.num_rows == expected.as_py()


def test_leave_one_out_removes_the_rows_own_outcome(demo_data) -> None:  # type: ignore[no-untyped-def]
    cf, cat = demo_data.cf, default_catalog()
    priors, fp = fit_priors(cf.n, cf.conv, cf.rev), FeatureParams()
    t = demo_data.touches.slice(0, 2000)
    rows = cf.rows_of(t.column("customer_id").to_numpy(zero_copy_only=False))
    acts = touch_actions(t, cat)
    keep = (rows >= 0) & (acts >= 0)
    rows, acts = rows[keep], acts[keep]
    conv = t.column("converted_14d").to_numpy(zero_copy_only=False)[keep].astype(float)
    rev = t.column("revenue_90d").to_numpy(zero_copy_only=False)[keep]
    flipped = pair_matrix(cf, priors, fp, rows, acts, LOO(acts, 1 - conv, rev))
    own = pair_matrix(cf, priors, fp, rows, acts, LOO(acts, conv, rev))
    # the cell's raw count drops by one: log1p(n - 1)
    cell = np.log1p(cf.n[rows, 1 + 3 + 3 + 4 + len(cat.templates) + acts] - 1)
    np.testing.assert_allclose(own[:, 9], cell, rtol=1e-5)
    # the features move with the row's own outcome only through LOO (so the outcome is taken out)
    assert not np.allclose(own, flipped)


def test_catalog_indices_match_the_eval_action_space_and_allowed_mask() -> None:
    cat, space = default_catalog(), default_action_space()
    assert list(cat.template_ids) == list(space.template_ids)
    assert list(cat.discounts) == list(space.discounts)
    idx = cat.indices(
        np.array(["winback_soft", "winback_soft", "winback_push", "nope"], dtype=object),
        np.array([7.5, 8.0, 5.0, 0.0]),
        snap=True,
    )
    assert idx.tolist() == [
        space.index("winback_soft", 7.5),
        space.index("winback_soft", 8),
        space.index("winback_push", 5),
        -1,
    ]
    mask = allowed_mask(["high_value_lapse_risk", "churn_rescue_nps"], [["email"], []], 5.0)
    assert [cat.label(i) for i in np.flatnonzero(mask[0])] == [
        "winback_soft@0",
        "winback_soft@5",
        "vip_checkin@0",
    ]
    assert not mask[1].any()


def test_own_decisions_join_the_training_data(warehouse_copy) -> None:  # type: ignore[no-untyped-def]
    con = duckdb.connect(str(warehouse_copy))
    try:
        base = logged_touches(con)
        at = datetime(2026, 11, 27, 14)
        con.execute(
            "insert into ops.decision_log (run_id, decision_id, as_of, customer_id, arm, status, channel, "
            "template_id, discount_pct, propensity, dry_run) values "
            "('r1', 'd1', ?, 'C0000001', 'treatment', 'send', 'email', 'winback_soft', 5, 0.9, false), "
            "('r2', 'd1', ?, 'C0000001', 'treatment', 'send', 'email', 'winback_soft', 5, 0.9, false), "
            "('r1', 'd2', ?, 'C0000002', 'treatment', 'send', 'email', 'winback_soft', 5, 0.9, false), "
            "('r1', 'd3', ?, 'C0000003', 'holdout', 'holdout', null, null, 0, 1.0, false), "
            "('r3', 'd4', ?, 'C0000004', 'treatment', 'send', 'email', 'winback_soft', 5, 0.9, true)",
            [at, at, at, at, at],
        )
        con.execute(
            "insert into ops.decision_outcomes values ('d1', 'C0000001', true, 120.5, ?), "
            "('d3', 'C0000003', false, 0, ?), ('d4', 'C0000004', true, 99.0, ?)",
            [at, at, at],
        )
        with_own = logged_touches(con)
        without = logged_touches(con, include_own=False)
        early = logged_touches(con, before=at.replace(tzinfo=UTC))
    finally:
        con.close()
    # d1 once although two live runs logged it; d2 has no outcome yet, d3 is a holdout, d4 a dry run
    assert with_own.num_rows == base.num_rows + 1
    own = with_own.filter(pc.equal(with_own.column("source"), "decision_log")).to_pylist()
    assert own == [
        {
            "customer_id": "C0000001",
            "touched_at": at,
            "template_id": "winback_soft",
            "channel": "email",
            "discount_pct": 5.0,
            "propensity": 0.9,
            "converted_14d": True,
            "revenue_90d": 120.5,
            "source": "decision_log",
        }
    ]
    assert without.num_rows == base.num_rows and early.num_rows == base.num_rows
    assert at - timedelta(0) == own[0]["touched_at"]

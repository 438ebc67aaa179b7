"""The promotion gate in both directions, through its tables: the offline screen admits a candidate
to a live ramp and refuses a clearly worse one; the ramp's outcomes then promote a truly better
candidate (it becomes the policy in place) and roll back a truly worse one (refused from then on)."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from activation.gate import PromotionRefused, check_promotion, policy_in_place
from core.config import RampSettings
from warehouse.ops_tables import ensure_ops_tables

CAND = "learned@gbm-abc"
A, B = ("winback_soft", 5.0), ("winback_soft", 0.0)
RAMP = RampSettings(min_decisions=200, max_decisions=10**6)


def _eval(con: duckdb.DuckDBPyConnection, low: float, value: float = 25.0) -> None:
    report = {
        "eval_id": f"e{low}",
        "candidate": {"identity": CAND, "name": "learned"},
        "baseline": {"identity": "rules", "name": "rules"},
        "comparisons": [{"metric": "revenue_90d", "value": low + 2, "low": low, "high": low + 4}],
        "customer_values": [
            {"policy": "rules", "metric": "revenue_90d", "segment": "all", "dr_value": value}
        ],
    }
    con.execute(
        "insert into ops.eval_runs values (?, now(), ?, 'rules', 100, ?)",
        [f"e{low}", CAND, json.dumps(report)],
    )


def _ramp_outcomes(con: duckdb.DuckDBPyConnection, ramp_id: str, gain_pct: float, n: int, seed: int) -> None:
    """n ramp decisions: the candidate would send A to 40% of customers (B otherwise), the rules
    always B; the coin sends the candidate's action on half; outcomes from a known truth."""
    rng = np.random.default_rng(seed)
    differs, to_cand = rng.random(n) < 0.4, rng.random(n) < 0.5
    send_a = differs & to_cand
    mean = np.where(send_a, 25.0 * (1 + gain_pct / 0.4), 25.0)
    revenue = np.where(rng.random(n) < 0.25, rng.gamma(2.0, mean / 0.5), 0.0)
    run, cid, did = f"run-{seed}", [f"C{seed}-{i}" for i in range(n)], [f"d-{seed}-{i}" for i in range(n)]
    cand = [json.dumps([[*(A if d else B), 1.0]]) for d in differs]
    assignments = pa.table({
        "run_id": [run] * n, "customer_id": cid, "ramp_id": [ramp_id] * n,
        "arm": ["candidate" if c else "incumbent" for c in to_cand], "share": [0.5] * n,
        "candidate_pmf": cand, "incumbent_pmf": [json.dumps([[*B, 1.0]])] * n,
    })  # fmt: skip
    log = pa.table({
        "run_id": [run] * n, "decision_id": did, "customer_id": cid, "status": ["send"] * n,
        "template_id": [A[0]] * n, "discount_pct": np.where(send_a, A[1], B[1]), "dry_run": [False] * n,
    })  # fmt: skip
    out = pa.table(
        {"decision_id": did, "customer_id": cid, "converted_14d": revenue > 0, "revenue_90d": revenue}
    )
    con.register("a", assignments)
    con.register("l", log)
    con.register("o", out)
    con.execute("insert into ops.ramp_assignments select * from a")
    con.execute(
        "insert into ops.decision_log (run_id, decision_id, customer_id, status, template_id, discount_pct, "
        "dry_run) select * from l"
    )
    con.execute("insert into ops.decision_outcomes select *, now() from o")
    for name in ("a", "l", "o"):
        con.unregister(name)


def _gate(con: duckdb.DuckDBPyConnection, force: bool = False):  # type: ignore[no-untyped-def]
    return check_promotion(con, CAND, primary_metric="revenue_90d", force=force, goal="90d_clv", ramp=RAMP)


def test_the_screen_refuses_a_clearly_worse_candidate() -> None:
    con = duckdb.connect()
    ensure_ops_tables(con)
    _eval(con, low=-4.0)  # 16% of the in-place value below zero at worst: past the 10% screen
    with pytest.raises(PromotionRefused, match="below the screen's -2.500"):
        _gate(con)
    assert con.execute("select count(*) from ops.ramps").fetchone() == (0,)


def test_a_truly_better_candidate_ramps_then_is_promoted() -> None:
    con = duckdb.connect()
    ensure_ops_tables(con)
    _eval(con, low=-1.5)  # an interval that cannot tell: the screen admits it to a ramp
    first = _gate(con)
    assert first.passed and first.ramp_id and first.ramp_share == 0.5 and "ramping" in first.summary()
    _ramp_outcomes(con, first.ramp_id, gain_pct=0.08, n=300, seed=1)
    assert _gate(con).ramp_id == first.ramp_id  # too few outcomes yet: the ramp goes on
    _ramp_outcomes(con, first.ramp_id, gain_pct=0.08, n=40_000, seed=2)
    done = _gate(con)
    assert done.passed and done.ramp_id is None and "promoted" in done.reason
    assert policy_in_place(con) == CAND
    assert _gate(con).reason == f"{CAND} is the policy in place"


def _rolled_back(seed: int) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A warehouse whose ramp of a 8%-worse candidate (admitted by the screen) was rolled back."""
    con = duckdb.connect()
    ensure_ops_tables(con)
    _eval(con, low=-1.5)
    ramp_id = _gate(con).ramp_id
    assert ramp_id
    _ramp_outcomes(con, ramp_id, gain_pct=-0.08, n=40_000, seed=seed)
    with pytest.raises(PromotionRefused, match="rolled back"):
        _gate(con)
    return con, ramp_id


def test_a_truly_worse_candidate_is_rolled_back_and_refused() -> None:
    con, _ = _rolled_back(seed=3)
    assert policy_in_place(con) == "rules"
    with pytest.raises(PromotionRefused, match="rolled back"):  # stays refused, even with the same eval
        _gate(con)
    assert _gate(con, force=True).forced


def test_a_candidate_shown_better_offline_is_promoted_after_a_canary_unless_it_harms() -> None:
    """With the screen's lower bound above zero the ramp is a canary: promoted after
    `canary_decisions` outcomes that do not show it worse, rolled back if they do."""
    con = duckdb.connect()
    ensure_ops_tables(con)
    _eval(con, low=0.5)
    first = _gate(con)
    assert first.ramp_id and "shown better" in first.reason
    _ramp_outcomes(con, first.ramp_id, gain_pct=0.04, n=600, seed=4)
    assert _gate(con).ramp_id == first.ramp_id  # fewer than canary_decisions outcomes yet
    _ramp_outcomes(con, first.ramp_id, gain_pct=0.04, n=600, seed=5)
    done = _gate(con)
    assert done.passed and done.ramp_id is None and "shown better offline, no harm live" in done.reason
    assert policy_in_place(con) == CAND

    harmful = duckdb.connect()
    ensure_ops_tables(harmful)
    _eval(harmful, low=0.5)  # the log said better; live, its new action earns nothing
    ramp_id = _gate(harmful).ramp_id
    assert ramp_id
    _ramp_outcomes(harmful, ramp_id, gain_pct=-0.4, n=1500, seed=6)
    with pytest.raises(PromotionRefused, match="worse"):
        check_promotion(harmful, CAND, primary_metric="revenue_90d", force=False, goal="90d_clv", ramp=RAMP)
    assert policy_in_place(harmful) == "rules"


def test_a_new_eval_after_a_roll_back_starts_a_new_ramp() -> None:
    con, ramp_id = _rolled_back(seed=7)
    con.execute("update ops.eval_runs set created_at = now() - interval 1 day")  # the old eval
    with pytest.raises(PromotionRefused, match="was rolled back; a new eval"):
        _gate(con)
    _eval(con, low=-1.0)  # a new eval, after the roll-back
    again = _gate(con)
    assert again.ramp_id and again.ramp_id != ramp_id

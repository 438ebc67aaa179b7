"""The synthetic data generator: determinism, argument errors, shapes and the logging policy."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from warehouse import generate, truth
from warehouse.synth_marketing import LOGGING_EPSILON, logging_policy_probs

REPO = Path(__file__).resolve().parents[2]


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    config = generate.GenerateConfig(seed=7, customers=3000, as_of=date(2026, 11, 27))
    generate.generate(config, out=root / "raw", truth_out=root / "truth")
    return root


def test_same_seed_gives_byte_identical_files(small: Path, tmp_path: Path) -> None:
    config = generate.GenerateConfig(seed=7, customers=3000, as_of=date(2026, 11, 27))
    generate.generate(config, out=tmp_path / "raw", truth_out=tmp_path / "truth")
    assert _digest(tmp_path / "raw") == _digest(small / "raw")
    assert _digest(tmp_path / "truth") == _digest(small / "truth")


def test_world_redraws_the_history_of_the_same_customers(small: Path) -> None:
    """bench/bench_ope_accuracy.py's premise: history 0 is the generated file, others are new draws."""
    world = generate.build_world(generate.GenerateConfig(seed=7, customers=3000, as_of=date(2026, 11, 27)))
    written = pq.read_table(small / "raw" / "campaign_touches.parquet")
    own = world.touches()
    assert own.equals(world.touches())  # the same numbers on every call
    for col in ("touch_id", "customer_id", "template_id", "propensity", "revenue_90d"):
        assert own.column(col).to_pylist() == written.column(col).to_pylist(), col
    other = world.touches(np.random.default_rng(1))
    assert not other.column("template_id").equals(own.column("template_id"))
    lifecycle_ids = set(world.people.customer_id.take(np.flatnonzero(world.lifecycle)).to_pylist())
    assert set(other.column("customer_id").to_pylist()) & lifecycle_ids


def test_other_seed_gives_other_data(small: Path, tmp_path: Path) -> None:
    config = generate.GenerateConfig(seed=8, customers=3000, as_of=date(2026, 11, 27))
    generate.generate(config, out=tmp_path / "raw", truth_out=tmp_path / "truth")
    assert _digest(tmp_path / "raw")["orders.parquet"] != _digest(small / "raw")["orders.parquet"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--customers", "0"], "--customers: 0 is out of range"),
        (["--customers", "5000001"], "--customers: 5000001 is out of range"),
        (["--customers", "many"], "--customers: 'many' is not an integer"),
        (["--as-of", "2026-13-01"], "--as-of: '2026-13-01' is not a date; pass YYYY-MM-DD"),
        (["--seed", "-1"], "--seed: -1 is negative; pass a seed >= 0"),
    ],
)
def test_invalid_arguments_exit_2_with_one_clear_line(args: list[str], needle: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "warehouse.generate",
            *args,
            "--out",
            str(tmp_path / "r"),
            "--truth-out",
            str(tmp_path / "t"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    error_lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and needle in error_lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_tables_are_consistent(small: Path) -> None:
    raw = small / "raw"
    customers = pq.read_table(raw / "customers.parquet")
    ids = set(customers.column("customer_id").to_pylist())
    assert len(ids) == customers.num_rows == 3000
    assert set(pq.read_table(raw / "orders.parquet").column("customer_id").to_pylist()) <= ids
    orders = pq.read_table(raw / "orders.parquet")
    assert pc.min(orders.column("amount")).as_py() > 0
    # heavy tail: the largest order is far above the median
    amounts = orders.column("amount").to_numpy()
    assert amounts.max() > 8 * np.median(amounts)
    # timezone follows the country
    pairs = set(
        zip(customers.column("country").to_pylist(), customers.column("timezone").to_pylist(), strict=True)
    )
    assert ("JP", "Asia/Tokyo") in pairs and all(not (c == "JP" and tz != "Asia/Tokyo") for c, tz in pairs)
    # preferred channel respects consent when the customer consented to anything
    t = customers.to_pydict()
    for pref, e, s, p in zip(
        t["preferred_channel"], t["consent_email"], t["consent_sms"], t["consent_push"], strict=True
    ):
        if e or s or p:
            assert {"email": e, "sms": s, "push": p}[pref]
    comments = [c for c in pq.read_table(raw / "nps_responses.parquet").column("comment").to_pylist() if c]
    assert any("ignore previous instructions" in c.lower() for c in comments)
    assert any(any(ord(ch) > 0x2000 for ch in c) for c in comments)  # emoji present
    assert generate.read_meta(raw) == {"as_of": "2026-11-27", "customers": 3000, "seed": 7}


def test_touches_log_exact_propensities_and_outcomes_follow_truth(small: Path) -> None:
    touches = pq.read_table(small / "raw" / "campaign_touches.parquet")
    grid = truth.action_grid()
    assert len(grid) == 26
    assert touches.num_rows >= 3000
    prop = touches.column("propensity").to_numpy()
    assert prop.min() >= LOGGING_EPSILON / len(grid) - 1e-12 and prop.max() <= 1
    valid = {(a.template_id, a.discount_pct, a.channel) for a in grid}
    rows = zip(
        touches.column("template_id").to_pylist(),
        touches.column("discount_pct").to_pylist(),
        touches.column("channel").to_pylist(),
        strict=True,
    )
    assert all(r in valid for r in rows)
    # converted touches carry revenue, others none
    conv = touches.column("converted_14d").to_numpy(zero_copy_only=False)
    rev = touches.column("revenue_90d").to_numpy()
    assert (rev[~conv] == 0).all() and (rev[conv] > 0).all()
    # observed conversion rate matches the truth's expected conversion within sampling error
    params = truth.load_truth(small / "truth").params
    index = {c: i for i, c in enumerate(params.column("customer_id").to_pylist())}
    rows_idx = [index[c] for c in touches.column("customer_id").to_pylist()]
    expected, _ = truth.expected_reward(
        params.take(rows_idx),
        touches.column("template_id").to_pylist(),
        touches.column("discount_pct").to_numpy(),
    )
    se = np.sqrt(expected.mean() * (1 - expected.mean()) / len(expected))
    assert abs(conv.mean() - expected.mean()) < 4 * se


def test_logging_policy_rows_are_distributions_with_a_floor() -> None:
    n = 50
    rng = np.random.default_rng(0)
    situation = rng.choice(np.array([*truth.SITUATIONS, "none"], dtype=object), n)
    probs = logging_policy_probs(situation, rng.integers(0, 3, n), rng.random((n, 3)) < 0.5)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert probs.min() >= LOGGING_EPSILON / len(truth.action_grid()) - 1e-12
    # the playbook: a lapsing customer with email consent who prefers email is most likely to get
    # the soft win-back email at 5%
    one = logging_policy_probs(
        np.array(["high_value_lapse_risk"], dtype=object), np.array([0]), np.array([[True, True, True]])
    )[0]
    labels = [(a.template_id, a.discount_pct) for a in truth.action_grid()]
    assert labels[int(one.argmax())] == ("winback_soft", 5.0)


def test_expected_rewards_file_and_discount_tradeoff(small: Path) -> None:
    t = truth.load_truth(small / "truth")
    assert t.expected_rewards is not None
    assert t.expected_rewards.num_rows == 3000 * len(truth.action_grid())
    one = t.params.slice(0, 1)
    conv, rev = truth.expected_reward(one.take([0, 0, 0]), ["winback_soft"] * 3, [0.0, 5.0, 10.0])
    assert conv[0] < conv[1] < conv[2]  # a discount lifts conversion
    assert np.all((rev >= 0) & (conv <= 1))
    with pytest.raises(ValueError, match="unknown template_id"):
        truth.expected_reward(one, ["nope"], [0.0])

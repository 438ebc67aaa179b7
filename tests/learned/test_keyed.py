"""Keyed draws: the same row draws the same whatever else is in the log, a seed redraws everything,
and the draws have the distributions the training assumes."""

from __future__ import annotations

import numpy as np

from agent.learned import keyed


def test_a_row_keeps_its_draws_when_rows_join_and_a_seed_changes_them() -> None:
    ids = [f"C{i}" for i in range(20_000)]
    keys = keyed.string_keys(ids)
    assert keys.dtype == np.uint64 and len(np.unique(keys)) == len(ids)
    np.testing.assert_array_equal(keys[:5], keyed.string_keys(ids[:5]))  # per id, not per position
    kept = set(keyed.smallest(keyed.combine(keys, 0), 5_000).tolist())
    grown = np.concatenate([keyed.string_keys([f"N{i}" for i in range(200)]), keys])  # 1% more, first
    kept_grown = {int(i) - 200 for i in keyed.smallest(keyed.combine(grown, 0), 5_000) if i >= 200}
    assert len(kept & kept_grown) >= 0.98 * 5_000
    other_seed = set(keyed.smallest(keyed.combine(keys, 1), 5_000).tolist())
    assert len(kept & other_seed) < 0.3 * 5_000  # about a quarter: an independent draw
    # drawn by position, the same growth redraws the sample (what the keys replace)
    by_position = set(np.random.default_rng(0).choice(len(ids), 5_000, replace=False).tolist())
    moved = {int(i) - 200 for i in np.random.default_rng(0).choice(len(grown), 5_000, replace=False)}
    assert len(by_position & moved) < 0.3 * 5_000


def test_keyed_draws_are_uniform_and_poisson() -> None:
    u = keyed.uniform(keyed.combine(keyed.string_keys([str(i) for i in range(50_000)]), 7))
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    w = keyed.poisson1(keyed.combine(np.arange(50_000), 3))
    assert abs(w.mean() - 1) < 0.02 and abs(w.var() - 1) < 0.05
    assert abs((w == 0).mean() - np.exp(-1)) < 0.01
    assert len(keyed.smallest(np.arange(10, dtype=np.uint64), 20)) == 10

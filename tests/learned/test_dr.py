"""The DR-learner (learner "dr"): its scores are unbiased where the reward model is wrong, its
cross-fitting holds whole customers out, and the learner trains, scores, saves and loads on a small
synthetic log (no warehouse)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from agent.learned import keyed
from agent.learned.actions import default_catalog
from agent.learned.data import TOUCH_SCHEMA
from agent.learned.dr_learner import bank_pairs, customer_folds, dr_pseudo_outcomes
from agent.learned.features import _CUSTOMER_SQL, build_customer_features
from agent.learned.model import LearnedModel, LearnerParams, data_fingerprint, model_version, train
from core.contracts import CHANNELS, SEGMENTS


def test_dr_scores_match_each_actions_true_mean_where_the_reward_model_is_misspecified() -> None:
    """A log whose policy favours some actions by the context, a reward model that is wrong on every
    action (a constant, and a shifted truth): the DR scores' mean per action is the true mean, the
    reward model's is not."""
    rng = np.random.default_rng(0)
    n, k = 200_000, 3
    x = rng.uniform(size=n)
    true = np.column_stack([2.0 + 3.0 * x, 4.0 - 2.0 * x, 1.0 + 6.0 * x**2])  # E[y | x, a]
    logits = np.column_stack([2.0 * x, 1.0 - 2.0 * x, np.zeros(n)])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert probs.min() > 0.04  # above the floor used below: no clipping, so no clipping bias
    logged = (rng.uniform(size=n)[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    y = true[np.arange(n), logged] + rng.normal(0, 2.0, size=n)
    p = probs[np.arange(n), logged]
    target = true.mean(axis=0)
    wrong = {"constant": np.full((n, k), 2.0), "shifted": true + np.array([1.5, -1.0, 2.0])}
    for name, mu in wrong.items():
        for a in range(k):
            gamma = dr_pseudo_outcomes(mu[:, a], logged == a, y, p, floor=0.01)
            se = gamma.std() / np.sqrt(n)
            assert abs(gamma.mean() - target[a]) < 4 * se, (name, a, gamma.mean(), target[a], se)
            assert abs(mu[:, a].mean() - target[a]) > 20 * se, (name, a)  # the reward model alone is off
    # the floor bounds the weight of a rare action's outcome
    one, both = np.ones(2), np.array([True, True])
    np.testing.assert_allclose(
        dr_pseudo_outcomes(np.zeros(2), both, one, np.array([0.001, 0.5]), 0.01), [100, 2]
    )
    np.testing.assert_allclose(dr_pseudo_outcomes(np.zeros(2), both, one, np.array([0.001, 0.5])), [20, 2])
    with pytest.raises(ValueError, match="floor"):
        dr_pseudo_outcomes(np.zeros(1), np.ones(1, bool), np.ones(1), np.ones(1), floor=0.0)


def test_cross_fitting_holds_whole_customers_out_and_pairs_stay_in_the_bank_and_budget() -> None:
    keys = keyed.string_keys([f"C{i:05d}" for i in range(1001)])
    folds = customer_folds(keys, 3, seed=5)
    assert set(folds.tolist()) == {0, 1, 2} and np.bincount(folds).min() > 1001 / 3 * 0.85
    np.testing.assert_array_equal(folds, customer_folds(keys, 3, seed=5))
    assert not np.array_equal(folds, customer_folds(keys, 3, seed=6))
    # a customer's rows share its key, so they share a fold
    rows_of = np.repeat(np.arange(1001), 3)
    assert (customer_folds(keys[rows_of], 3, seed=5).reshape(-1, 3) == folds[:, None]).all()
    cat = default_catalog()
    segments = np.array([SEGMENTS[i % 3] for i in range(500)], dtype=object)
    row_keys = keyed.string_keys([f"T{i}" for i in range(500)])
    rows, acts = bank_pairs(segments, cat, 10**9, 0, row_keys)
    assert len(rows) == cat.segment_mask(segments).sum()
    assert (cat.segments[acts] == segments[rows]).all()
    rows, acts = bank_pairs(segments, cat, 1000, 0, row_keys)
    assert len(rows) == 1000 and (np.diff(rows) >= 0).all() and (cat.segments[acts] == segments[rows]).all()
    with pytest.raises(ValueError, match="2 folds"):
        customer_folds(keys[:10], 1, seed=0)


def test_a_log_that_grows_keeps_its_folds_and_its_sampled_pairs() -> None:
    """Yesterday's customers keep their folds and yesterday's rows keep their sampled pairs when a
    day of new customers and touches joins the log (drawn by position, both were redrawn)."""
    old_ids = [f"C{i:05d}" for i in range(0, 2000, 2)]
    new_ids = sorted(old_ids + [f"C{i:05d}" for i in range(1, 400, 2)])  # new customers sort in between
    old_f = dict(zip(old_ids, customer_folds(keyed.string_keys(old_ids), 2, seed=3), strict=True))
    new_f = dict(zip(new_ids, customer_folds(keyed.string_keys(new_ids), 2, seed=3), strict=True))
    assert all(old_f[c] == new_f[c] for c in old_ids)
    cat = default_catalog()
    old_rows = [f"T{i}" for i in range(3000)]
    grown = sorted(old_rows + [f"T{i}" for i in range(3000, 3030)])  # 1% more rows, in the middle
    seg = lambda rows: np.array([SEGMENTS[int(r[1:]) % 3] for r in rows], dtype=object)  # noqa: E731
    budget = 10_000  # of about 26,000 pairs
    r0, a0 = bank_pairs(seg(old_rows), cat, budget, 1, keyed.string_keys(old_rows))
    r1, a1 = bank_pairs(seg(grown), cat, budget, 1, keyed.string_keys(grown))
    before = {(old_rows[r], a) for r, a in zip(r0, a0, strict=True)}
    after = {(grown[r], a) for r, a in zip(r1, a1, strict=True)}
    # the grown log's budget displaces about 1% of the old pairs, not 60%
    assert len(before & after) >= 0.97 * budget


def _synthetic_world(n_customers: int = 600, touches_each: int = 40, seed: int = 0):  # type: ignore[no-untyped-def]
    """Customers with the columns of the customer table, a log whose policy rarely takes each
    segment's best action, and the true conversion probability of every (customer, action)."""
    rng = np.random.default_rng(seed)
    cat = default_catalog()
    ids = np.array([f"c{i:05d}" for i in range(n_customers)], dtype=object)
    segs = np.array([SEGMENTS[i % len(SEGMENTS)] for i in range(n_customers)], dtype=object)
    cols: dict[str, object] = {"customer_id": ids, "segment": segs}
    for line in _CUSTOMER_SQL.split("select", 1)[1].split("from", 1)[0].replace("\n", " ").split(","):
        name = line.strip().split(".")[-1]
        if name in cols or not name:
            continue
        if name.startswith("consent_"):
            cols[name] = np.ones(n_customers, dtype=bool)
        elif name == "preferred_channel":
            cols[name] = rng.choice(np.array(CHANNELS, dtype=object), n_customers)
        else:
            cols[name] = rng.gamma(2.0, 5.0, n_customers)
    customers = pa.table(cols)
    # truth: the bank's first action converts at 0.15, the others by their position in the bank,
    # the best one (the bank's last) at 0.45 plus a customer effect
    lift = rng.uniform(-0.05, 0.05, n_customers)
    truth = np.full((n_customers, len(cat)), np.nan)
    bank = cat.segment_mask(segs)
    for i in range(n_customers):
        acts = np.flatnonzero(bank[i])
        truth[i, acts] = 0.15 + 0.3 * np.arange(len(acts)) / (len(acts) - 1) + lift[i]
    # the logging policy: the bank's last action with probability 0.03, the rest uniformly
    rows = np.repeat(np.arange(n_customers), touches_each)
    logged, prop = np.empty(len(rows), dtype=np.int64), np.empty(len(rows))
    for j, i in enumerate(rows):
        acts = np.flatnonzero(bank[i])
        p = np.full(len(acts), 0.97 / (len(acts) - 1))
        p[-1] = 0.03
        c = rng.choice(len(acts), p=p)
        logged[j], prop[j] = acts[c], p[c]
    conv = rng.uniform(size=len(rows)) < truth[rows, logged]
    start = datetime(2026, 1, 1)
    touches = pa.table(
        {
            "customer_id": ids[rows],
            "touched_at": [start + timedelta(days=int(d)) for d in rng.integers(0, 300, len(rows))],
            "template_id": cat.template_ids[logged],
            "channel": cat.channels[logged],
            "discount_pct": cat.discounts[logged],
            "propensity": prop,
            "converted_14d": conv,
            "revenue_90d": conv * rng.gamma(2.0, 30.0, len(rows)),
            "source": np.full(len(rows), "history", dtype=object),
        },
        schema=TOUCH_SCHEMA,
    )
    return customers, touches, truth, bank


def test_dr_learner_trains_scores_saves_and_loads_on_a_synthetic_log(tmp_path: Path) -> None:
    customers, touches, truth, bank = _synthetic_world()
    cf = build_customer_features(customers, touches)
    params = LearnerParams(
        learner="dr",
        gbm_rounds=40,
        gbm_min_leaf=50,
        gbm_members=3,
        dr_max_pairs=60_000,
        dr_min_leaf_share=0.02,
    )
    m = train(touches, cf, goal="engagement", params=params)
    assert m.learner == "dr" and m._backend.scale == 1.0
    members = m.score_members(cf, bank)
    assert members.shape == (3, *bank.shape)
    assert np.isfinite(members[:, bank]).all() and np.isnan(members[:, ~bank]).all()
    assert np.ptp(members[:, bank], axis=0).max() > 0  # bootstraps of the customers: a spread
    values = m.score(cf, bank)
    np.testing.assert_allclose(values[bank], members.mean(axis=0)[bank])
    # the values are on the outcome's scale, and the argmax beats uniform random on the truth
    assert 0.1 < np.nanmean(values) < 0.5
    pick = np.where(bank, np.nan_to_num(values, nan=-np.inf), -np.inf).argmax(axis=1)
    assert truth[np.arange(len(pick)), pick].mean() > np.nanmean(truth, axis=1).mean() + 0.05
    # save and load give the same scores and the same learner
    loaded = LearnedModel.load(m.save(tmp_path / m.version))
    assert (loaded.learner, loaded.version, loaded.params) == ("dr", m.version, params)
    np.testing.assert_array_equal(loaded.score(cf, bank), values)
    # the version includes the learner and its DR parameters; a GBM's version ignores them
    data = data_fingerprint(touches, cf)
    gbm = LearnerParams(**{**params.__dict__, "learner": "gbm"})
    assert m.version == model_version(data, "engagement", params)
    assert m.version != model_version(data, "engagement", gbm)
    assert m.version != model_version(data, "engagement", LearnerParams(**{**params.__dict__, "dr_folds": 3}))
    other_floor = LearnerParams(**{**gbm.__dict__, "dr_propensity_floor": 0.05})
    assert model_version(data, "engagement", gbm) == model_version(data, "engagement", other_floor)
    for bad in ({"dr_folds": 1}, {"dr_propensity_floor": 0.0}, {"dr_min_leaf_share": 0.5}):
        with pytest.raises(ValueError, match="learner dr needs"):
            train(touches, cf, goal="engagement", params=LearnerParams(**{**params.__dict__, **bad}))

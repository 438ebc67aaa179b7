"""LearnedModel: versioning, save/load, VW's own predictions, and value on the truth (demo)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from agent.learned import explore, vw_learner
from agent.learned.actions import allowed_mask, default_catalog
from agent.learned.features import CUSTOMER_FEATURES, PAIR_FEATURES, customer_matrix, pair_matrix
from agent.learned.model import LearnedModel, LearnerParams, data_fingerprint, model_version, train
from warehouse.truth import expected_reward, load_truth

FAST = {
    "gbm": LearnerParams(learner="gbm", max_rows=30_000, gbm_rounds=40, gbm_members=5),
    "vw": LearnerParams.for_goal("engagement", "vw", max_rows=60_000),
    "dr": LearnerParams(learner="dr", max_rows=30_000, gbm_rounds=40, gbm_members=5, dr_max_pairs=100_000),
}


@pytest.fixture(scope="module")
def models(demo_data):  # type: ignore[no-untyped-def]
    return {k: train(demo_data.touches, demo_data.cf, goal="engagement", params=p) for k, p in FAST.items()}


def _allowed(demo_data) -> np.ndarray:  # type: ignore[no-untyped-def]
    c = demo_data.customers
    consent = np.column_stack(
        [c.column(f"consent_{ch}").to_numpy(zero_copy_only=False) for ch in ("email", "sms", "push")]
    ).astype(bool)
    return allowed_mask(demo_data.cf.segments, consent, 5.0)


@pytest.mark.parametrize("learner", ["gbm", "vw", "dr"])
def test_same_data_and_params_give_the_same_version_and_others_differ(demo_data, models, learner) -> None:  # type: ignore[no-untyped-def]
    m = models[learner]
    again = train(demo_data.touches, demo_data.cf, goal="engagement", params=FAST[learner])
    assert again.version == m.version and len(m.version) == 16
    allowed = _allowed(demo_data)
    np.testing.assert_array_equal(again.score(demo_data.cf, allowed), m.score(demo_data.cf, allowed))
    # the version is the hash of the data and the parameters: any change to either changes it
    data = data_fingerprint(demo_data.touches, demo_data.cf)
    assert m.version == model_version(data, "engagement", FAST[learner])
    other_params = LearnerParams(**{**FAST[learner].__dict__, "seed": 1})
    fewer = data_fingerprint(demo_data.touches.slice(0, demo_data.touches.num_rows - 1), demo_data.cf)
    others = {
        model_version(data, "engagement", other_params),
        model_version(fewer, "engagement", FAST[learner]),
        model_version(data, "90d_clv", FAST[learner]),
    }
    assert m.version not in others and len(others) == 3


@pytest.mark.parametrize("learner", ["gbm", "vw", "dr"])
def test_save_load_roundtrip_gives_identical_scores(demo_data, models, learner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    m = models[learner]
    path = m.save(tmp_path / "models" / m.version)
    loaded = LearnedModel.load(path)
    assert (loaded.version, loaded.goal, loaded.learner) == (m.version, m.goal, learner)
    allowed = _allowed(demo_data)
    a, b = m.score(demo_data.cf, allowed), loaded.score(demo_data.cf, allowed)
    assert np.isfinite(a[allowed]).all() and np.isnan(a[~allowed]).all()
    np.testing.assert_array_equal(a, b)
    # saving again over it is atomic: no temp folder is left behind
    m.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == [m.version]
    with pytest.raises(FileNotFoundError, match="no learned model"):
        LearnedModel.load(tmp_path / "nowhere")


def test_vw_numpy_scores_and_pmf_equal_vowpal_wabbits_own(demo_data, models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    m, cf, cat = models["vw"], demo_data.cf, default_catalog()
    path = m.save(tmp_path / "vw")
    rows = np.arange(40)
    bank = cat.segment_mask(cf.segments[rows])
    ex, acts = np.nonzero(bank)
    shared = customer_matrix(cf, m.priors, m.params.features, rows)
    pair = pair_matrix(cf, m.priors, m.params.features, rows[ex], acts)
    lines = vw_learner.example_lines(shared, CUSTOMER_FEATURES, ex, acts, pair, PAIR_FEATURES, cat)
    costs, pmfs = vw_learner.predict_pyvw(path / "model.vw", lines)
    assert len(costs) == len(rows)
    ours = m.score_pairs(cf, rows[ex], acts)
    np.testing.assert_allclose(-np.concatenate(costs), ours, atol=1e-4)
    # VW's epsilon-greedy PMF is explore.pmf's (epsilon 0.05 in the model's arguments)
    values = np.full(bank.shape, np.nan)
    values[ex, acts] = ours
    p, _ = explore.pmf(values, bank, epsilon=0.05)
    for i in range(len(rows)):
        np.testing.assert_allclose(p[i, bank[i]], pmfs[i], atol=1e-6)


@pytest.mark.parametrize("learner", ["gbm", "vw", "dr"])
def test_model_trained_on_the_demo_beats_uniform_random_on_the_truth(demo_data, models, learner) -> None:  # type: ignore[no-untyped-def]
    cf, cat = demo_data.cf, default_catalog()
    allowed = _allowed(demo_data)
    ok = allowed.any(axis=1)
    params = load_truth(demo_data.warehouse.truth_dir).params
    index = {c: i for i, c in enumerate(params.column("customer_id").to_pylist())}
    r, a = np.nonzero(allowed[ok])
    ids = cf.customer_ids[ok]
    conv, _ = expected_reward(
        params.take(pa.array([index[ids[i]] for i in r])), cat.template_ids[a], cat.discounts[a]
    )
    truth = np.full(allowed[ok].shape, np.nan)
    truth[r, a] = conv
    choice = explore.choose(models[learner].score(cf, allowed)[ok], allowed[ok], ids, seed=0)
    learned = truth[np.arange(len(ids)), choice.greedy].mean()
    uniform = np.nanmean(truth, axis=1).mean()
    oracle = np.nanmax(truth, axis=1).mean()
    assert learned > uniform * 1.1, (learned, uniform, oracle)


def test_bad_inputs_are_refused(demo_data, models) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="unknown goal"):
        train(demo_data.touches, demo_data.cf, goal="clicks", params=FAST["gbm"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="allowed must be"):
        models["gbm"].score(demo_data.cf, np.ones((3, 2), dtype=bool))


def test_gbm_value_is_the_mean_of_its_seeded_boosters_and_old_single_booster_models_load(
    demo_data, models, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    m, cf = models["gbm"], demo_data.cf
    boosters = m._backend.boosters
    assert len(boosters) == FAST["gbm"].gbm_members == 5
    rows, acts = np.arange(50), np.zeros(50, dtype=np.int64)
    x = np.hstack(
        [
            customer_matrix(cf, m.priors, m.params.features, rows),
            pair_matrix(cf, m.priors, m.params.features, rows, acts),
            m._action_cols(acts),
        ]
    )
    each = np.array([b.predict(x) for b in boosters])
    # the members differ (their seeds and bootstraps), and the model's value is their calibrated mean
    assert np.ptp(each, axis=0).max() > 0
    np.testing.assert_allclose(m.score_pairs(cf, rows, acts), m._backend.scale * each.mean(axis=0))
    np.testing.assert_allclose(m.score_members(cf, np.eye(len(m.catalog), dtype=bool)[acts], rows)[:, :, 0],
                               m._backend.scale * each)  # fmt: skip
    # a model saved before boosters were averaged (no gbm_members in its meta, one model.lgb) loads
    # as the one booster it is
    single = train(demo_data.touches, demo_data.cf, goal="engagement",
                   params=LearnerParams(**{**FAST["gbm"].__dict__, "gbm_members": 1}))  # fmt: skip
    path = single.save(tmp_path / "old")
    meta = json.loads((path / "model.json").read_text())
    del meta["params"]["gbm_members"]
    (path / "model.json").write_text(json.dumps(meta))
    old = LearnedModel.load(path)
    assert old.params.gbm_members == 1
    np.testing.assert_array_equal(old.score_pairs(cf, rows, acts), single.score_pairs(cf, rows, acts))
    with pytest.raises(ValueError, match="gbm_members"):
        train(demo_data.touches, cf, goal="engagement",
              params=LearnerParams(**{**FAST["gbm"].__dict__, "gbm_members": 0}))  # fmt: skip


def test_the_value_is_calibrated_to_the_logged_outcomes(demo_data, models) -> None:  # type: ignore[no-untyped-def]
    """The ensemble's mean on the logged (customer, action) pairs matches the logged outcomes' mean
    (the scale is fit on out-of-bag rows: each member's rows of the customers its bootstrap left out).
    On this small test model (30,000 rows, 40 rounds) that fit moves by about 4% with the training
    seed, so the bound is 10%."""
    from agent.learned.model import LearnerParams as P
    from agent.learned.model import training_rows

    m, cf = models["gbm"], demo_data.cf
    t = training_rows(demo_data.touches, cf, m.catalog, P(**{**m.params.__dict__, "max_rows": 10**9}))
    pred = m.score_pairs(cf, t.rows, t.actions)
    observed = (t.conv if m.goal == "engagement" else t.rev).mean()
    assert abs(pred.mean() / observed - 1) < 0.1, (pred.mean(), observed)
    assert m._backend.scale != 1.0  # fit, not left at its default


def test_the_members_spread_is_wider_where_the_log_is_thin(demo_data, models) -> None:  # type: ignore[no-untyped-def]
    """The members are bootstraps of the customers, so they disagree most on the actions the log
    rarely took: what the safe switch and Thompson exploration read as the model's uncertainty."""
    from agent.learned.model import training_rows

    m, cf = models["gbm"], demo_data.cf
    allowed = _allowed(demo_data)
    ok = np.flatnonzero(allowed.any(axis=1))
    members = m.score_members(cf, allowed[ok], rows=ok)
    spread = np.nanstd(members, axis=0) / np.abs(np.nanmean(members, axis=0))  # (n, actions)
    t = training_rows(demo_data.touches, cf, m.catalog, m.params)
    logged = np.bincount(t.actions, minlength=len(m.catalog))
    seen = np.flatnonzero(np.isfinite(spread).any(axis=0))
    order = seen[np.argsort(logged[seen])]
    third = max(len(order) // 3, 1)
    thin, thick = np.nanmean(spread[:, order[:third]]), np.nanmean(spread[:, order[-third:]])
    assert thin > thick, (thin, thick)

"""MODE=learned through the one pipeline on the demo warehouse: true propensities, the logged
distribution, determinism, model reuse, and the promotion gate's verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from activation.gate import PromotionRefused, check_promotion, eval_hint
from agent.context import data_as_of, load_contact_history, load_contexts, reference_for
from agent.pipeline import decide
from core.config import LearnedSettings, RunConfig, settings_from
from warehouse.ops_tables import ensure_ops_tables


@pytest.fixture(scope="module")
def learned_runs(demo_warehouse, tmp_path_factory):
    """Two learned runs of the demo (the second must reuse the saved model), as nba-activate decides."""
    import os

    from testing.demo_warehouse import warehouse_env

    models = tmp_path_factory.mktemp("models")
    saved = os.environ.get("NBA_MODELS_DIR")
    os.environ["NBA_MODELS_DIR"] = str(models)
    with warehouse_env(demo_warehouse):
        con = duckdb.connect(str(demo_warehouse.duckdb_path), read_only=True)
        contexts = load_contexts(con)
        history = load_contact_history(con)
        as_of, ref = data_as_of(con), reference_for(con)
        config = settings_from(RunConfig, mode="learned")
        runs = [
            decide(contexts, history, config, run_id=f"r{i}", as_of=as_of, ref=ref, con=con) for i in range(2)
        ]
        con.close()
    if saved is None:
        os.environ.pop("NBA_MODELS_DIR", None)
    else:
        os.environ["NBA_MODELS_DIR"] = saved
    return runs, models


def test_learned_decisions_log_true_propensities(learned_runs) -> None:
    runs, _ = learned_runs
    decided, stats = runs[0]
    acting = [d for d, _ in decided if d.status in ("send", "deferred")]
    assert len(acting) > 200 and stats["model_trained"] == 1
    explored = 0
    for d in acting:
        assert d.policy == "learned" and d.model and d.model.startswith(f"{LearnedSettings().learner}-")
        probs = {(a.template_id, a.discount_pct): a.probability for a in d.action_pmf}
        assert abs(sum(probs.values()) - 1) < 1e-6
        assert d.propensity == pytest.approx(probs[(d.template_id, d.discount_pct)])
        if len(probs) > 1:
            assert 0 < d.propensity < 1  # never 0 or 1 when there is a choice
            explored += d.propensity < 0.5  # a non-greedy draw (epsilon 0.05 spread over the rest)
        else:
            assert d.propensity == 1
    assert explored > 0, "exploration happens"
    assert all(d.discount_pct <= 5 for d in acting)


def test_same_inputs_same_decisions_and_the_model_is_reused(learned_runs) -> None:
    (first, _), (second, stats2) = learned_runs[0]
    assert stats2["model_trained"] == 0  # the saved version was loaded
    a = [(d.customer_id, d.status, d.template_id, d.discount_pct, d.propensity) for d, _ in first]
    b = [(d.customer_id, d.status, d.template_id, d.discount_pct, d.propensity) for d, _ in second]
    assert a == b
    models = learned_runs[1]
    versions = [p.name for p in Path(models).iterdir()]
    assert (
        len(versions) == 1
        and first[0][0].model == f"{LearnedSettings().learner}-{versions[0]}"
        or any(d.model == f"{LearnedSettings().learner}-{versions[0]}" for d, _ in first)
    )


def test_a_demo_sized_warehouse_gets_the_auto_ensemble(learned_runs) -> None:
    # NBA_LEARNED__GBM_MEMBERS=auto: five boosters up to 20,000 customers with features (the demo's
    # day-10 simulation stays at or above day 0 with five, not with one), saved with the model
    _, models = learned_runs
    (folder,) = Path(models).iterdir()
    meta = json.loads((folder / "model.json").read_text())
    assert meta["params"]["gbm_members"] == 5
    assert sorted(p.name for p in folder.glob("*.lgb")) == ["model-1.lgb", "model-2.lgb", "model-3.lgb",
                                                          "model-4.lgb", "model.lgb"]  # fmt: skip


def test_ensemble_size_auto_by_customers_and_the_setting_is_checked() -> None:
    from agent.learned.model import AUTO_MEMBERS_MAX_CUSTOMERS, ensemble_size
    from core.config import LearnedSettings
    from core.errors import ConfigError

    assert ensemble_size("auto", 700) == 5 and ensemble_size("auto", AUTO_MEMBERS_MAX_CUSTOMERS + 1) == 1
    assert ensemble_size(3, 10**6) == 3
    assert LearnedSettings().gbm_members == "auto" and LearnedSettings(gbm_members="2").gbm_members == 2
    for bad in ("0", "11", "x", "2.5"):
        with pytest.raises(ConfigError, match="auto or a whole number of boosters from 1 to 10"):
            settings_from(RunConfig, learned={"gbm_members": bad})


def _eval_row(con: duckdb.DuckDBPyConnection, identity: str, baseline: str, low: float) -> None:
    report = {
        "eval_id": f"e-{low}",
        "candidate": {"identity": identity},
        "baseline": {"identity": baseline},
        "comparisons": [{"metric": "revenue_90d", "value": low + 1, "low": low, "high": low + 2}],
    }
    con.execute(
        "insert into ops.eval_runs values (?, now(), ?, ?, 100, ?)",
        [report["eval_id"], identity, baseline, json.dumps(report)],
    )


def test_the_gate_refuses_without_an_eval_and_says_which_to_run() -> None:
    con = duckdb.connect()
    ensure_ops_tables(con)
    ident = "learned@gbm-abc"
    with pytest.raises(PromotionRefused, match="make eval MODE=learned BASELINE=rules") as exc:
        check_promotion(con, ident, primary_metric="revenue_90d", force=False)
    assert exc.value.exit_code == 5 and "\n" not in str(exc.value)
    forced = check_promotion(con, ident, primary_metric="revenue_90d", force=True)
    assert forced.forced and not forced.passed and "forced past a refusal" in forced.summary()
    assert check_promotion(con, "rules", primary_metric="revenue_90d", force=False).passed


def test_the_gate_reads_the_latest_eval_of_that_exact_identity() -> None:
    con = duckdb.connect()
    ensure_ops_tables(con)
    ident = "learned@gbm-abc"
    _eval_row(con, ident, "rules", low=-0.5)
    with pytest.raises(
        PromotionRefused, match="-0.500 per contactable customer at worst against rules, below the screen's"
    ):
        check_promotion(con, ident, primary_metric="revenue_90d", force=False)
    _eval_row(con, "learned@gbm-other", "rules", low=1.0)  # another recipe: does not count
    with pytest.raises(PromotionRefused):
        check_promotion(con, ident, primary_metric="revenue_90d", force=False)
    _eval_row(con, ident, "rules", low=0.2)
    verdict = check_promotion(con, ident, primary_metric="revenue_90d", force=False)
    assert verdict.passed and verdict.eval_id == "e-0.2"
    assert (
        eval_hint("llm:v3@smollm2", "learned@gbm-abc")
        == "make eval MODE=llm PROMPT_VERSION=v3 BASELINE=learned"
    )


def test_next_best_action_in_learned_mode_for_a_warehouse_customer(demo_warehouse_env, tmp_path, monkeypatch):
    from agent.api import next_best_action
    from core.errors import UserError

    monkeypatch.setenv("NBA_MODELS_DIR", str(tmp_path / "models"))
    con = duckdb.connect(str(demo_warehouse_env.duckdb_path), read_only=True)
    cid = con.execute(
        "select customer_id from main.mart_marketing__segment_scores where segment = 'churn_rescue_nps' "
        "order by customer_id limit 1"
    ).fetchall()[0][0]
    con.close()
    nba = next_best_action(customer_id=cid, mode="learned", consent={"email": True, "sms": True, "push": True},
                           last_contact={}, globally_suppressed=False)  # fmt: skip
    assert (
        nba["policy"] == "learned"
        and nba["model"].startswith(f"{LearnedSettings().learner}-")
        and nba["status"] in ("send", "deferred")
    )
    assert nba["template"].startswith("cs_") and 0 < nba["propensity"] <= 1 and nba["discount_pct"] <= 5
    with pytest.raises(UserError, match="customer_id"):
        next_best_action("churn_rescue_nps", mode="learned")


def test_the_switch_level_is_per_goal_and_segment(learned_runs, demo_warehouse) -> None:
    """On revenue, high-value lapse-risk customers switch at the stricter level and the others at
    switch_confidence: each segment's choices are those of the one level it is given, and the
    per-segment level changes choices (both ways checked against a policy with one level for all)."""
    import os

    import numpy as np

    from agent.pipeline import Pipeline
    from agent.policies.learned import LearnedPolicy, model_for
    from agent.policies.rules import RulesPolicy
    from core.config import ConfigError
    from testing.demo_warehouse import warehouse_env

    _, models = learned_runs
    settings = LearnedSettings()
    assert settings.switch_level("90d_clv", "high_value_lapse_risk") == 0.95
    assert settings.switch_level("engagement", "high_value_lapse_risk") == settings.switch_confidence
    assert settings.switch_level("90d_clv", "churn_rescue_nps") == settings.switch_confidence
    saved = os.environ.get("NBA_MODELS_DIR")
    os.environ["NBA_MODELS_DIR"] = str(models)
    try:
        with warehouse_env(demo_warehouse):
            con = duckdb.connect(str(demo_warehouse.duckdb_path), read_only=True)
            config = settings_from(RunConfig, mode="learned")
            guard, ref = config.guardrails(), reference_for(con)
            trained = model_for(con, guard.goal, before=None, settings=settings)
            assert not trained.trained  # the fixture's saved model
            pipe = Pipeline(RulesPolicy(guard, ref), guard=guard, ref=ref, run_id="t", as_of=data_as_of(con))
            batch = [(c, e) for c in load_contexts(con) if (e := pipe.eligibility(c, {})).needs_proposal]
            con.close()
    finally:
        os.environ.pop("NBA_MODELS_DIR") if saved is None else os.environ.__setitem__("NBA_MODELS_DIR", saved)

    def choices(s: LearnedSettings) -> tuple[np.ndarray, str]:
        policy = LearnedPolicy(trained, guard=guard, ref=ref, settings=s)
        members, allowed = policy.member_values(batch)
        order = policy.greedy_order(batch, members.mean(axis=0), allowed, members)
        return np.where(allowed, np.nan_to_num(order, nan=-np.inf), -np.inf).argmax(axis=1), policy.identity

    ours, ident = choices(settings)
    loose, ident_loose = choices(settings.model_copy(update={"segment_switch_confidence": {}}))
    strict, _ = choices(
        settings.model_copy(update={"switch_confidence": 0.95, "segment_switch_confidence": {}})
    )
    hv = np.array([c.segment == "high_value_lapse_risk" for c, _ in batch])
    assert hv.any() and (~hv).any()
    assert (ours[hv] == strict[hv]).all() and (ours[~hv] == loose[~hv]).all()
    assert (ours[hv] != loose[hv]).any(), "the stricter level keeps the rules' action somewhere"
    assert ident != ident_loose, "the levels are part of the recipe an eval validates"
    for bad, name in (('{"90d_clv": {"x": 1.5}}', "SEGMENT_SWITCH_CONFIDENCE__.*X: Input should be less than 1"),
                      ('{"weekly": {"x": 0.9}}', "SEGMENT_SWITCH_CONFIDENCE__WEEKLY"),
                      ("hvlr=0.9", "NBA_LEARNED__SEGMENT_SWITCH_CONFIDENCE: must be JSON")):  # fmt: skip
        os.environ["NBA_LEARNED__SEGMENT_SWITCH_CONFIDENCE"] = bad
        try:
            with pytest.raises(ConfigError, match=name):
                from core.config import load_settings

                load_settings(RunConfig)
        finally:
            del os.environ["NBA_LEARNED__SEGMENT_SWITCH_CONFIDENCE"]


def test_a_file_at_nba_models_dir_is_one_line_before_any_training(
    warehouse_copy, tmp_path, monkeypatch, capsys
) -> None:
    """NBA_MODELS_DIR at a file: make plan MODE=learned trained for a minute, then ended in a
    FileExistsError traceback (exit 1). Refused in one line naming it (exit 2), the file untouched."""
    from activation.cli import main as activate_cli

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    monkeypatch.setenv("NBA_MODELS_DIR", str(a_file))
    monkeypatch.setenv("NBA_OUTBOX_DIR", str(tmp_path / "outbox"))
    assert activate_cli(["plan", "--mode", "learned", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NBA_MODELS_DIR" in err[0] and str(a_file) in err[0], err
    assert a_file.read_text() == "mine\n"

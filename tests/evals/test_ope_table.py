"""OPE from anyone's logs: a small logged table whose candidate's true value is known in closed form,
read in every target shape; bad tables are one ValueError naming the column; the CLI front."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from evals.cli import main as eval_main
from evals.ope import IPS, SNIPS, DoublyRobust
from evals.ope_table import (
    LabelActionSpace,
    TargetAction,
    TargetLoggedProb,
    TargetLong,
    TargetProbs,
    estimate_from_table,
    logged_from_table,
)

# Two contexts (x = 0 or 1, half the rows each), three actions with known mean rewards per context,
# a logging policy that depends on x, Gaussian noise around the means.
ACTIONS = ("email", "sms", "push")
MEANS = {0: {"email": 1.0, "sms": 2.0, "push": 0.5}, 1: {"email": 2.0, "sms": 0.5, "push": 1.5}}
LOGGING = {0: {"email": 0.2, "sms": 0.3, "push": 0.5}, 1: {"email": 0.5, "sms": 0.3, "push": 0.2}}
BEST = {0: "sms", 1: "email"}  # true value 0.5 * 2.0 + 0.5 * 2.0 = 2.0
WORST = {0: "push", 1: "sms"}  # true value 0.5 * 0.5 + 0.5 * 0.5 = 0.5
BEST_VALUE, WORST_VALUE = 2.0, 0.5
UNIFORM_VALUE = sum(sum(m.values()) for m in MEANS.values()) / 6  # 1.25
N = 8_000


def logged_table(n: int = N, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n)
    probs = np.array([[LOGGING[int(v)][a] for a in ACTIONS] for v in x])
    pick = (rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    action = np.array(ACTIONS, dtype=object)[pick]
    mean = np.array([MEANS[int(v)][a] for v, a in zip(x, action, strict=True)])
    return pa.table(
        {
            "row_id": pa.array([f"r{i}" for i in range(n)]),
            "x": pa.array(x, pa.int64()),
            "action": pa.array(action.tolist()),
            "reward": pa.array(mean + rng.normal(0, 1.0, n)),
            "propensity": pa.array(probs[np.arange(n), pick]),
            "best_action": pa.array([BEST[int(v)] for v in x]),
            "worst_action": pa.array([WORST[int(v)] for v in x]),
            # the uniform candidate, one column per action, and its probability of the logged action
            **{f"pi_{a}": pa.array(np.full(n, 1 / 3)) for a in ACTIONS},
            "cand_logged": pa.array(np.full(n, 1 / 3)),
        }
    )


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return logged_table()


def _estimates(table: pa.Table, target, **kw) -> dict:
    found = estimate_from_table(
        table,
        action_col="action",
        reward_col="reward",
        propensity_col="propensity",
        target=target,
        feature_cols=["x"],
        n_bootstrap=400,
        seed=3,
        **kw,
    )
    return {e.estimator: e for e in found}


def test_every_estimator_covers_the_known_value_and_tells_a_wrong_target_apart(table):
    best = _estimates(table, TargetAction("best_action"), name="best")
    worst = _estimates(table, TargetAction("worst_action"), name="worst")
    assert set(best) == set(worst) == {"ips", "snips", "dr"}
    for key in ("ips", "snips", "dr"):
        b, w = best[key], worst[key]
        assert b.metric == "reward" and b.policy == "best"
        assert b.low <= BEST_VALUE <= b.high, b
        assert w.low <= WORST_VALUE <= w.high, w
        assert abs(b.value - BEST_VALUE) < 0.1 and abs(w.value - WORST_VALUE) < 0.1
        # distinguishable: each interval excludes the other policy's value, and they do not overlap
        assert not b.low <= WORST_VALUE <= b.high and not w.low <= BEST_VALUE <= w.high
        assert w.high < b.low


def test_every_target_shape_reads_the_same_policy(table, tmp_path):
    wide = _estimates(table, TargetProbs(prefix="pi_"))
    named = _estimates(table, TargetProbs(columns={a: f"pi_{a}" for a in ACTIONS}))
    long = pa.table(
        {
            "row_id": pa.array([r for r in table.column("row_id").to_pylist() for _ in ACTIONS]),
            "action": pa.array(list(ACTIONS) * table.num_rows),
            "prob": pa.array(np.full(3 * table.num_rows, 1 / 3)),
        }
    )
    pq.write_table(long, tmp_path / "long.parquet")
    longs = _estimates(table, TargetLong(tmp_path / "long.parquet", row_col="row_id"))
    for key in ("ips", "snips", "dr"):
        assert wide[key].low <= UNIFORM_VALUE <= wide[key].high, wide[key]
        assert wide[key].value == pytest.approx(named[key].value) == pytest.approx(longs[key].value)
    # only the logged action's probability: IPS and SNIPS, the same figures; DR needs every action's
    logged = _estimates(table, TargetLoggedProb("cand_logged"))
    assert set(logged) == {"ips", "snips"}
    for key in ("ips", "snips"):
        assert logged[key].value == pytest.approx(wide[key].value)
        assert (logged[key].low, logged[key].high) == pytest.approx((wide[key].low, wide[key].high))
    with pytest.raises(ValueError, match="DR needs the candidate's probability of every action"):
        _estimates(table, TargetLoggedProb("cand_logged"), estimators=["dr"])


def test_the_table_is_the_estimators_own_input(table):
    """The entry point only builds evals.ope's inputs: the same estimators on them agree exactly."""
    data, target = logged_from_table(
        table,
        action_col="action",
        reward_col="reward",
        propensity_col="propensity",
        target=TargetAction("best_action"),
        feature_cols=["x"],
    )
    assert isinstance(data.space, LabelActionSpace) and data.space.labels == tuple(sorted(ACTIONS))
    assert [data.space.label(a) for a in data.actions[:5]] == table.column("action").to_pylist()[:5]
    found = _estimates(table, TargetAction("best_action"))
    for i, est in enumerate((IPS("revenue_90d"), SNIPS("revenue_90d"), DoublyRobust("revenue_90d"))):
        direct = est.estimate(data, target, n_bootstrap=400, seed=3 + i)
        assert (direct.value, direct.low, direct.high) == pytest.approx(
            (found[direct.estimator].value, found[direct.estimator].low, found[direct.estimator].high)
        )


def _with(table: pa.Table, name: str, values: list) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values))


@pytest.mark.parametrize(
    ("change", "kw", "message"),
    [
        (lambda t: t.drop_columns(["propensity"]), {}, r"no column 'propensity' .* propensity_col="),
        (lambda t: _with(t, "propensity", [0.0] + [0.5] * 99), {}, r"propensity column 'propensity': 1 row"),
        (
            lambda t: _with(t, "propensity", [None] + [0.5] * 99),
            {},
            r"propensity column 'propensity'.*\(0, 1\]",
        ),
        (lambda t: _with(t, "propensity", [1.5] + [0.5] * 99), {}, r"not in \(0, 1\]"),
        (lambda t: _with(t, "reward", [None] + [1.0] * 99), {}, r"reward column 'reward': 1 row.*null"),
        (lambda t: _with(t, "reward", ["a"] * 100), {}, r"reward column 'reward' is string, not numeric"),
        (lambda t: _with(t, "action", [None] + ["sms"] * 99), {}, r"action column 'action': 1 row.*null"),
        (lambda t: _with(t, "x", ["hi"] * 100), {}, r"feature column 'x' is string.*encode it as numbers"),
        (
            lambda t: _with(t, "pi_sms", [0.9] * 100),
            {"target": TargetProbs(prefix="pi_")},
            r"sum to more than 1",
        ),
        (lambda t: _with(t, "best_action", ["fax"] * 100), {}, r"column 'best_action': label\(s\) \['fax'\]"),
        (lambda t: t, {"target": TargetProbs(prefix="q_")}, r"no column starts with the target prefix 'q_'"),
        (lambda t: t.slice(0, 0), {}, r"no rows"),
        (lambda t: t, {"actions": ["email", "sms"]}, r"label\(s\) \[.push.\] are not among the actions"),
    ],
)
def test_a_bad_table_is_one_value_error_naming_the_column_and_fix(table, change, kw, message):
    args = {"target": TargetAction("best_action"), **kw}
    with pytest.raises(ValueError, match=message):
        estimate_from_table(
            change(table.slice(0, 100)),
            action_col="action",
            reward_col="reward",
            propensity_col="propensity",
            feature_cols=["x"],
            n_bootstrap=100,
            **args,
        )


def test_cli_reads_a_file_and_refuses_bad_input_in_one_line(table, tmp_path, capsys):
    path = tmp_path / "logs.csv"
    pa_csv.write_csv(table, path)
    args = ["ope", "--table", str(path), "--feature-col", "x", "--n-bootstrap", "200"]
    assert eval_main([*args, "--target-action-col", "best_action", "--output", "json"]) == 0
    rows = {r["estimator"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"ips", "snips", "dr"}
    assert all(r["low"] <= BEST_VALUE <= r["high"] for r in rows.values())
    assert eval_main([*args, "--target-prob-prefix", "pi_", "--estimator", "snips"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["estimator", "value"] and out[1].startswith("snips") and len(out) == 2

    bad = [
        ([*args, "--target-action-col", "best_action", "--propensity-col", "p"], "no column 'p'"),
        ([*args], "give exactly one way to read the candidate policy"),
        ([*args, "--target-long", str(path)], "--target-long needs --row-col"),
        ([*args, "--target-action-col", "best_action", "--estimator", "dm"], "--estimator 'dm'"),
        (["ope", "--table", str(tmp_path / "nope.csv"), "--target-action-col", "a"], "no such file"),
    ]
    for argv, words in bad:
        assert eval_main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err

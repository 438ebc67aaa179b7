"""Our own campaign history is one generic OPE table: the mart's Arrow table, with its action as one
label column, through `estimate_from_table` gives exactly the estimates of the existing path
(`LoggedData.from_arrow` and the estimators)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from evals.actions import default_action_space
from evals.ope import IPS, SNIPS, DoublyRobust, LoggedData, TargetPolicy
from evals.ope_table import TargetAction, TargetProbs, estimate_from_table
from evals.targets import uniform_random_target
from tests.evals.conftest import RULES

FEATURES = ("lifetime_revenue", "recency_days", "sessions_30d", "latest_nps_score", "tenure_days")
ROWS = 15_000


@pytest.fixture(scope="module")
def history(demo_warehouse) -> pa.Table:
    with duckdb.connect(str(demo_warehouse.duckdb_path), read_only=True) as con:
        cols = ", ".join(f"c.{f}" for f in FEATURES)
        table = con.sql(
            f"select h.*, {cols} from main.mart_marketing__campaign_history h "
            f"join main.mart_marketing__customer_360 c using (customer_id) order by h.touch_id limit {ROWS}"
        ).arrow()
    table = table.read_all() if hasattr(table, "read_all") else table
    # the generic table's action: one label per (template, grid discount), ActionSpace.label's form
    discount = pc.cast(pc.cast(table.column("discount_pct"), pa.int64()), pa.string())
    action = pc.binary_join_element_wise(table.column("template_id"), discount, "@")
    return table.append_column("action", action)


def test_the_campaign_history_through_the_generic_table_gives_the_same_estimates(history):
    space = default_action_space()
    data = LoggedData.from_arrow(history, feature_columns=FEATURES)
    rules = TargetPolicy.deterministic(
        np.array([space.index(*RULES[s]) for s in data.segments]), name="rules"
    )
    uniform = uniform_random_target(data, dtype=np.float64)
    wide = {f"pi_{space.label(i)}": pa.array(uniform.probs[:, i]) for i in range(len(space))}
    # the rules' action per row, by segment (a touch without one takes its template's segment)
    labels = {seg: space.label(space.index(t, d)) for seg, (t, d) in RULES.items()}
    table = history.append_column("rules_action", pa.array([labels[s] for s in data.segments]))
    for name, col in wide.items():
        table = table.append_column(name, col)
    for metric in ("revenue_90d", "converted_14d"):
        for target, generic in ((rules, TargetAction("rules_action")), (uniform, TargetProbs(prefix="pi_"))):
            found = estimate_from_table(
                table,
                action_col="action",
                reward_col=metric,
                propensity_col="propensity",
                target=generic,
                feature_cols=FEATURES,
                group_col="customer_id",
                actions=space,
                n_bootstrap=200,
                seed=11,
            )
            assert [e.estimator for e in found] == ["ips", "snips", "dr"]
            for i, est in enumerate((IPS(metric), SNIPS(metric), DoublyRobust(metric))):
                ours = est.estimate(data, target, n_bootstrap=200, seed=11 + i)
                theirs = found[i]
                assert theirs.metric == metric
                assert (theirs.value, theirs.low, theirs.high) == pytest.approx(
                    (ours.value, ours.low, ours.high), rel=1e-9
                ), (metric, target.name, est.name)

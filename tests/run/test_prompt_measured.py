"""The default prompt is the best measured one, and a prompt version the evals found worse than the
rules on the truth says so in the plan's header; one found better, or never evaluated, does not."""

from __future__ import annotations

import json

import duckdb
import pytest

from activation.gate import measured_against_rules
from activation.plan import plan_text
from core.config import RunConfig, settings_from
from warehouse.ops_tables import ensure_ops_tables


def _con(*evals: tuple[str, float | None]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_ops_tables(con)
    for i, (candidate, true) in enumerate(evals):
        report = {
            "primary_metric": "revenue_90d",
            "comparisons": [
                {"metric": "conversion", "true_value": 9.9},
                {"metric": "revenue_90d", "true_value": true},
            ],
        }
        con.execute(
            "insert into ops.eval_runs values (?, now() + ? * interval 1 minute, ?, 'rules', 100, ?)",
            [f"e{i}", i, candidate, json.dumps(report)],
        )
    return con


def test_the_default_prompt_is_the_one_drafting_on_the_learned_ranking() -> None:
    assert settings_from(RunConfig).prompt_version == "v3"


def test_a_prompt_measured_worse_than_the_rules_is_named() -> None:
    con = _con(("llm:v1@smollm2-135m-instruct", -1.25))
    said = measured_against_rules(con, "v1")
    assert said is not None and "prompt v1 was measured worse than the rules" in said and "-1.25" in said
    header = {"plan": "p", "as_of": "2026-01-01T14:00:00+00:00", "policy_identity": "llm:v1@m", "valid_until": "x",
              "measured": said}  # fmt: skip
    assert f"warning: {said}" in plan_text(header, [])


@pytest.mark.parametrize(
    "evals",
    [
        (),  # never evaluated
        (("llm:v1@smollm2-135m-instruct", 0.4),),  # better on the truth
        (("llm:v1@smollm2-135m-instruct", None),),  # no truth (a real warehouse)
        (("llm:v1@m", -2.0), ("llm:v1@m", 0.3)),  # the latest eval found it better
        (("llm:v3@m+learned", -2.0),),  # another version
    ],
)
def test_a_prompt_not_measured_worse_is_not_flagged(evals) -> None:
    con = _con(*evals)
    assert measured_against_rules(con, "v1") is None
    assert "warning" not in plan_text(
        {
            "plan": "p",
            "as_of": "2026-01-01T14:00:00+00:00",
            "policy_identity": "llm:v1@m",
            "valid_until": "x",
        },
        [],
    )

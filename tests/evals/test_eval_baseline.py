"""The eval's default baseline is the policy in place, read from the run history as the promotion
gate reads it: rules on a new warehouse, the promoted candidate after a promotion; the candidate
itself is never its own baseline (then the rules, or for the rules the random reference, with a
line); an explicit BASELINE= always wins."""

from __future__ import annotations

import duckdb
import pytest

from core.config import settings_from
from evals.cli import _specs
from evals.settings import EvalSettings
from warehouse.ops_tables import ensure_ops_tables
from warehouse.policy_in_place import baseline_name, policy_in_place


def _warehouse(promoted: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_ops_tables(con)
    if promoted:
        con.execute(
            "insert into ops.ramps (ramp_id, candidate, incumbent, share, started_at, updated_at, state) "
            "values ('r1', ?, 'rules', 0.5, now(), now(), 'promoted')",
            [promoted],
        )
    return con


def _baseline(promoted: str | None, **settings: object) -> str:
    cfg = settings_from(EvalSettings, **settings)
    return _specs(cfg, policy_in_place(_warehouse(promoted)))[1].name


def test_a_new_warehouse_compares_with_the_rules() -> None:
    assert policy_in_place(_warehouse()) == "rules"
    assert _baseline(None, mode="learned") == "rules"
    assert _baseline(None, mode="llm", prompt_version="v3") == "rules"


def test_after_a_promotion_the_promoted_policy_is_the_baseline() -> None:
    assert _baseline("learned@dr-abc", mode="llm", prompt_version="v3") == "learned"
    assert _baseline("llm:v3@smollm2", mode="llm", prompt_version="v1") == "llm:v3"
    assert _baseline("llm:v3@smollm2", mode="learned") == "llm:v3"


def test_the_candidate_in_place_is_compared_with_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert _baseline("learned@dr-abc", mode="learned") == "rules"
    assert "the policy in place (learned@dr-abc) is the candidate" in capsys.readouterr().err
    assert _baseline("llm:v3@smollm2", mode="llm", prompt_version="v3") == "rules"
    # the rules in place, the rules the candidate: the uniform-random reference
    assert _baseline(None, mode="rules") == "random"
    assert "is the candidate: compared with random" in capsys.readouterr().err


def test_an_explicit_baseline_wins() -> None:
    assert _baseline("learned@dr-abc", mode="llm", prompt_version="v3", baseline="random") == "random"
    assert _baseline(None, mode="llm", prompt_version="v3", baseline="v1") == "llm:v1"
    with pytest.raises(Exception, match="same policy"):
        _baseline("learned@dr-abc", mode="learned", baseline="learned")


def test_baseline_names_of_identities() -> None:
    assert baseline_name("rules") == "rules"
    assert baseline_name("learned@dr-abc") == "learned"
    assert baseline_name("llm:v2@model") == "v2"
    assert baseline_name("retired-kind@x") == "rules"  # a kind no longer registered
    assert baseline_name("llm@model") == "rules"  # an LLM identity without its prompt version

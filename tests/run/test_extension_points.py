"""A new eligibility check, destination or policy is one class (or file) plus one registration line:
a toy of each, registered from this folder, runs through a dry run (plan) on the demo warehouse, and
the plan, the outbox and the words come from the toys themselves, with no product file edited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from toy_extensions import TOY, TOY_POLICY, ToyBlocklist, build_toy

from activation.destinations import registry
from activation.run import run_activation
from activation.settings import ActivateSettings
from activation.summary import RunSummary
from agent import policies
from agent.spark.decisions import require_spark_mode
from core.config import RunConfig, load_settings, settings_from
from core.errors import ConfigError
from evals.settings import EvalSettings
from guardrails.checks import ELIGIBILITY


def plan() -> RunSummary:
    return run_activation(load_settings(ActivateSettings, dry_run=True))


def rows(summary: RunSummary) -> dict[str, dict]:
    lines = (Path(summary.outbox or "") / "plan.jsonl").read_text().splitlines()
    return {r["customer_id"]: r for r in map(json.loads, lines)}


@pytest.fixture
def toys() -> Iterator[None]:
    ELIGIBILITY.register(ToyBlocklist())
    registry.register(TOY)
    try:
        yield
    finally:
        ELIGIBILITY.unregister(ToyBlocklist.name)
        registry.unregister(TOY.name)


def test_a_toy_check_and_destination_run_through_a_dry_run(
    warehouse_copy: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    before = rows(plan())
    request.getfixturevalue("toys")
    monkeypatch.setenv("NBA_TOY__CAMPAIGN", "winter")  # the toy's own section, read by the settings
    s = plan()
    after = rows(s)
    assert after.keys() == before.keys()

    held = {c for c in after if c.endswith("7")}
    assert held and all(after[c]["status"] == "suppressed" for c in held)
    # the check runs for everyone, after the registered eligibility checks and before any proposal's;
    # a customer it alone suppresses is decided by it, in its own words
    for r in after.values():
        names = [c["name"] for c in r["checks"]]
        assert names.index("toy_blocklist") == names.index("quiet_hours") + 1
    newly = [c for c in held if before[c]["status"] != "suppressed"]
    assert newly, "the demo has customers only the toy check stops"
    for c in newly:
        assert after[c]["decided_by"] == "toy blocklist"
        assert after[c]["why"].endswith("on the toy blocklist: never contacted")  # after a holdout, if any
        assert "toy_blocklisted" in after[c]["decision"]["reasons"]
    # everyone else is decided exactly as without it (the run id aside)
    for c in after.keys() - held:
        assert {**after[c]["decision"], "run_id": ""} == {**before[c]["decision"], "run_id": ""}

    # the toy destination gets one payload per send, built with its own settings
    sends = sorted(c for c, r in after.items() if r["status"] == "send")
    outbox = Path(s.outbox or "")
    toy_lines = [json.loads(line) for line in (outbox / "toy.jsonl").read_text().splitlines()]
    assert sorted(i["record_key"] for i in toy_lines) == sends  # the toy keys a record by customer
    assert {i["payload"]["campaign"] for i in toy_lines} == {"winter"}
    assert s.plan["toy"] == {"create": len(sends)}
    assert s.plan["hubspot"] == {"create": len(sends)}  # the registered ones keep working beside it


def test_registering_a_name_twice_is_refused(toys: None) -> None:
    with pytest.raises(ValueError, match="already registered"):
        ELIGIBILITY.register(ToyBlocklist())
    with pytest.raises(ValueError, match="already registered"):
        registry.register(TOY)


@pytest.fixture
def toy_policy() -> Iterator[None]:
    policies.register(TOY_POLICY, build_toy)
    try:
        yield
    finally:
        policies.registry.unregister(TOY_POLICY.name)


def test_a_toy_policy_runs_through_a_dry_run(
    warehouse_copy: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    rules = rows(plan())
    with pytest.raises(ConfigError, match="must be one of 'rules', 'learned' or 'llm'"):
        plan_with(monkeypatch, "toy")
    request.getfixturevalue("toy_policy")
    s = plan_with(monkeypatch, "toy")
    toy = rows(s)
    assert s.mode == "toy" and s.policy_identity == "toy" and toy.keys() == rules.keys()
    assert s.prompt_version is None and s.llm_calls == 0  # the kind needs no endpoint and no prompt

    def action(r: dict) -> tuple:
        d = r["decision"]
        return r["status"], d["channel"], d["template_id"], d["discount_pct"], d["message"]

    sends = [c for c, r in toy.items() if r["status"] == "send"]
    abstained = [c for c in sends if c.endswith("3")]
    assert abstained and len(abstained) < len(sends)
    for c, r in toy.items():
        assert action(r) == action(rules[c])  # the rules' action, whoever proposed it
        if r["status"] != "send":
            continue
        d = r["decision"]
        if c.endswith("3"):  # the guardrails fell back to the rules: a policy name the registry made
            assert (d["policy"], d["fallback_reason"]) == ("toy->rules", "toy_abstains")
        else:
            assert (d["policy"], d["rationale"]) == ("toy", "toy: the rules' action")
        assert d["decision_id"] != rules[c]["decision"]["decision_id"]  # the policy is part of the id


def plan_with(monkeypatch: pytest.MonkeyPatch, mode: str) -> RunSummary:
    monkeypatch.setenv("NBA_MODE", mode)
    return plan()


def test_a_toy_policy_is_asked_not_named(toy_policy: None) -> None:
    """What the house asks of a policy comes from its kind: the toy may be an eval's baseline, and
    Spark refuses it (it did not say it runs there), in the words it uses for the LLM."""
    assert EvalSettings(mode="rules", baseline="toy").baseline == "toy"
    with pytest.raises(ConfigError, match="spark decides in rules and learned modes, not toy"):
        require_spark_mode(settings_from(RunConfig, mode="toy"))
    with pytest.raises(ValueError, match="already registered"):
        policies.register(TOY_POLICY, build_toy)

"""A new eligibility check and a new destination are one class each plus one registration line: a
toy of each, registered from this folder, runs through a dry run (plan) on the demo warehouse, and
the plan, the outbox and the words come from the toys themselves, with no product file edited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from toy_extensions import TOY, ToyBlocklist

from activation.destinations import registry
from activation.run import run_activation
from activation.settings import ActivateSettings
from activation.summary import RunSummary
from core.config import load_settings
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

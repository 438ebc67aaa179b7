"""make simulate-days: one day of the loop on the demo world, and what its report says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.simulate_days import main, render_html, simulate_days
from testing.demo_warehouse import DemoWarehouse


def test_one_day_of_the_loop_learns_from_its_own_sends_and_says_both_targets(
    demo_warehouse_env: DemoWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBA_MODELS_DIR", str(tmp_path / "models"))  # simulate_days sets it; undone here
    report = simulate_days(1, goal="90d_clv", root=tmp_path / "sim", say=lambda s: None)
    day0, day1 = report.rows
    # the same yardstick both days, and day 1's model trained on day 0's own sends with outcomes
    assert day0.contactable == day1.contactable > 100
    assert day0.own_touches == 0 and day1.own_touches == day0.sends > 100
    assert day0.model != day1.model
    # values are expectations from the truth: the greedy learned policy is between rules and oracle
    assert day0.rules_true < day0.greedy_true <= day0.oracle_true
    # DR of the greedy policy from the product's own log: every logged send, an interval that a
    # day's few hundred sends make wide, and the report says whether it covers the truth
    assert day0.dr_greedy is None and day1.dr_rows == day0.sends
    assert day1.dr_covered is not None and day1.dr_half_width is not None and day1.dr_half_width > 0.05
    assert day1.dr_error is not None
    # day 0 ramped the learned candidate against the rules: both arms were sent, the mixture's
    # propensities logged, and the gate's sequential test read day 0's outcomes
    assert day0.ramp_decisions > 100 and day0.gate == "ramp" and day0.ramp_low is not None
    assert day0.ramp_low < day0.ramp_estimate < day0.ramp_high  # type: ignore[operator]
    assert day0.sent_true is not None and day0.sent_rules_true is not None
    # the gate's first step ran on day 0's log: the eval's paired interval, with its truth
    sc = report.screen
    assert sc is not None and sc.low < sc.value < sc.high and sc.true_value is not None
    verdict = report.verdict
    assert len(verdict) == 4
    assert ("NOT met" in verdict[0]) == (day1.greedy_true < day0.greedy_true)
    assert verdict[1].startswith("offline screen (eval on day 0's log): learned - rules")
    assert verdict[2].startswith("ramp of learned against rules: ramp after day")
    assert "within 5% of the truth on" in verdict[3] and "interval covers the truth on" in verdict[3]
    saved = json.loads(report.model_dump_json())
    assert saved["verdict"] == verdict and saved["rows"][1]["dr_covered"] == day1.dr_covered
    page = render_html(report)
    assert "covered" in page and ("met" in page)


def test_bad_days_get_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for days in (
        "0",
        "61",
        "abc",
        "",
        "1.5",
    ):  # not a number: typer's own line named neither DAYS= nor the range
        assert main(["--days", days]) == 2, days
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "DAYS=" in err[0] and "from 1 to 60" in err[0] and repr(days) in err[0], err
    for bad, name in (
        (["--seeds", "1;rm x"], "SEEDS="),
        (["--seeds", "-1"], "SEEDS="),
        (["--candidate", "x'"], "CANDIDATE="),
    ):
        assert main(bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and name in err[0], err

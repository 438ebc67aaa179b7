"""run_eval end to end on simulated data with a known truth, then the JSON/HTML report and ops.eval_runs."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from html import escape, unescape

import duckdb
import numpy as np
import pytest

from evals.harness import PolicySpec, run_eval
from evals.report import render_html, store_eval_run, write_report
from evals.simulate import simulate_logged, simulate_world
from evals.svg import IntervalRow, bar_chart, interval_chart, nice_ticks, text_width
from tests.evals.fakes import contexts_for, fake_decide

BASELINE = PolicySpec(name="rules", mode="rules", goal="90d_clv", discount_cap=10)
CANDIDATE = PolicySpec(name="llm_v2", mode="llm", prompt_version="v2", goal="90d_clv", discount_cap=10)


@pytest.fixture(scope="module")
def report():
    world = simulate_world(4_000, seed=11)
    data = simulate_logged(world, 120_000, seed=12, confounding=1.5)
    ctx = contexts_for(
        world.customer_ids,
        [
            ("high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps")[s]
            for s in world.segment
        ],
    )
    return run_eval(
        candidate=CANDIDATE,
        baseline=BASELINE,
        logged=data,
        contexts_by_customer=ctx,
        decide=fake_decide,
        truth=world.expected_reward,
        seed=3,
        n_bootstrap=300,
    )


def test_every_policy_is_estimated_against_the_truth(report):
    assert {v.policy for v in report.policy_values} == {"rules", "llm_v2", "uniform_random"}
    for policy in ("rules", "llm_v2", "uniform_random"):
        dr = report.value(policy, "dr", "revenue_90d")
        assert dr.true_value and abs(dr.value / dr.true_value - 1) < 0.05, dr
        assert dr.covers_truth, dr
    assert len(report.policy_values) == 3 * 3 * 2  # policies x estimators x metrics
    diff = report.difference["revenue_90d"]
    true_diff = report.value("llm_v2").true_value - report.value("rules").true_value
    assert diff["low"] <= true_diff <= diff["high"]


def test_scores_cases_and_prompt_table(report):
    llm = {s.name: s for s in report.scores["llm_v2"]}
    assert llm["fallback_rate"].value == pytest.approx(0.1, abs=0.01)
    assert llm["fallback_rate"].details["by_reason"] == {
        "message_check_failed": llm["fallback_rate"].details["fallbacks"]
    }
    assert llm["guardrail_interventions"].details["by_check"]["discount_clamp"]["fixed"] > 0
    assert llm["tokens_latency"].value == 460
    rows = {p.policy: p for p in report.prompt_versions}
    assert rows["llm_v2"].prompt_version == "v2" and rows["rules"].fallback_rate is None
    assert rows["llm_v2"].ope_value == report.value("llm_v2").value
    golden = {(c.policy, c.name): c for c in report.cases if c.suite == "golden"}
    assert golden[("rules", "lapse_sms_only")].passed
    assert golden[("rules", "no_consent_takes_no_action")].passed
    # the fake llm prefers sms: an email-only golden case that pins the channel still passes, but the
    # all-consent lapse case has no pinned channel and passes as well; the cap is never exceeded
    assert all(c.passed for c in report.cases if c.suite == "adversarial")


def test_report_written_atomically_and_stored(report, tmp_path):
    out = write_report(report, tmp_path)
    assert out.name == f"eval-{report.eval_id}"
    data = json.loads((out / "report.json").read_text())
    assert data["eval_id"] == report.eval_id and len(data["policy_values"]) == 18
    html = (out / "report.html").read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    # per contactable customer and per segment (one each per metric), per touch, interventions, discounts
    assert html.count("<svg") == 7 and "llm_v2 / dr" in html
    assert not list(out.glob(".*.tmp"))
    assert all((out / f).stat().st_mode & 0o777 == 0o644 for f in ("report.json", "report.html"))  # shareable
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    store_eval_run(con, report)
    row = con.execute(
        "select eval_id, candidate, baseline, sample_size, report_json from ops.eval_runs"
    ).fetchall()
    assert row[0][:4] == (report.eval_id, "llm_v2", "rules", report.sample_size)
    assert json.loads(row[0][4])["eval_id"] == report.eval_id


def _text(html: str) -> str:
    """The page's visible text: tags dropped, entities unescaped, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def test_html_reads_for_a_marketer(report):
    r = report.model_copy(deep=True)
    r.created_at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    r.data_as_of = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    html = render_html(r)
    text = _text(html)
    # created (wall time) and the data's date, both, in UTC
    assert "Created 2026-12-01 09:30 UTC" in text and "data as of 2026-11-27 14:00 UTC" in text
    # a headline sentence per comparison before any chart, the primary metric's first, with its truth
    top = _text(html[: html.index("<svg")])
    primary = r.primary_comparison()
    other = next(c for c in r.comparisons if c is not primary)
    assert primary is not None and primary.metric == "revenue_90d"
    assert top.index(primary.sentence) < top.index(other.sentence)
    assert f"true difference (from the generator): {primary.true_value:+.2f} revenue (90 days)" in top
    assert "Release check (--fail-if-worse): " + ("passes" if r.not_worse() else "fails") in top
    # the glossary explains every estimator and term the page uses
    glossary = _between(text, "How to read this report", "Estimator check")
    for term in (
        "Contactable customer",
        "Per contactable customer / per logged touch",
        "Oracle",
        "Share of oracle",
        "IPS (inverse propensity scoring)",
        "SNIPS (self-normalised IPS)",
        "DR (doubly robust)",
        "ESS (effective sample size)",
        "Support (actions / rows)",
    ):
        assert term in glossary, term
    # per contactable customer: every policy and the oracle, with its share of the oracle
    table = _between(text, "Value per contactable customer", "Revenue over 90 days: DR estimate")
    assert "share of oracle" in table
    for policy, role in (("rules", "baseline"), ("llm_v2", "candidate"), ("uniform_random", "reference")):
        v = r.customer_value(policy)
        assert f"{policy} {role} revenue_90d {v.dr_value:,.2f} [{v.dr_low:,.2f}, {v.dr_high:,.2f}]" in table
        assert f"{v.true_value:,.2f} {100 * v.share_of_oracle:.1f}%" in table
    oracle = r.customer_value("oracle")
    assert f"oracle best allowed action revenue_90d {oracle.dr_value:,.2f}" in table and "100.0%" in table
    # per segment: a chart per metric and every segment's value and share for every policy
    segments = _between(text, "By segment", "How to read this report")
    assert html.count("by segment</text>") == 2
    for seg in ("high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps"):
        v = r.customer_value("llm_v2", "revenue_90d", seg)
        assert f"{seg} ({v.customers:,} customers)" in segments
        assert f"{v.true_value:,.2f} ({v.share_of_oracle:.0%} of oracle)" in segments
    # every chart has an axis title naming its unit
    assert html.count('class="axis-title"') == html.count("<svg")
    assert "revenue over 90 days per contactable customer (currency units)" in text
    assert "customers converting within 14 days (% of contactable customers)" in text
    # pass/fail in words, never Python's booleans; failures by customer id, not decision id
    assert not re.search(r">\s*(True|False)\s*<", html)
    assert "pass" in _between(text, "Scorers", "Golden and adversarial")
    listed = next(s for s in r.scores["llm_v2"] if s.name == "fallback_rate").failures
    fallbacks = [f for f in listed if not f.startswith("... and ")]  # the scorer lists the first 50
    assert fallbacks and all(f.startswith("customer c") and "llm_v2-" not in f for f in fallbacks)
    assert escape(fallbacks[0]) in html


def test_html_escapes_untrusted_text(report):
    bad = report.model_copy(deep=True)
    hostile = '<img src=x onerror="alert(1)">'
    bad.cases[0].failures = ["<script>alert(1)</script>"]
    bad.cases[0].name = hostile
    bad.candidate["name"] = hostile
    for v in [*bad.policy_values, *bad.customer_values]:
        if v.policy == "llm_v2":
            v.policy = hostile
    for v in bad.customer_values:
        if v.segment == "churn_rescue_nps":
            v.segment = "</text><script>x</script>"
    bad.comparisons[0].sentence = hostile + " earns more"
    html = render_html(bad)
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html
    assert html.count("&lt;img") >= 5  # title, headline, tables and the chart labels
    assert not any(math.isnan(v.value) for v in report.policy_values if v.value is not None)


def test_page_is_self_contained(report):
    html = render_html(report)
    for needle in ("<script", "<link", "@import", "url(", "src=", "<iframe"):
        assert needle not in html, needle
    assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", html)


def test_the_release_gate(report):
    """--fail-if-worse passes when the low end of candidate - baseline (primary metric) is >= 0."""
    c = report.primary_comparison()
    assert c is not None and c.metric == report.primary_metric
    assert report.not_worse() == (c.low >= 0)
    better = report.model_copy(deep=True)
    better.primary_comparison().low = 0.0
    worse = report.model_copy(deep=True)
    worse.primary_comparison().low = -0.01
    nobody = report.model_copy(update={"comparisons": []})
    assert better.not_worse() and not worse.not_worse() and not nobody.not_worse()


def test_chart_ticks_are_round_and_never_clipped():
    for lo, hi in ((18.2, 24.6), (0.0, 42.8), (0.2053, 0.2639), (0.0, 1_234.0), (5.0, 5.0)):
        ticks = nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi and 3 <= len(ticks) <= 7, (lo, hi, ticks)
        steps = np.diff(ticks)
        assert np.allclose(steps, steps[0]), ticks
    rows = [IntervalRow("a policy", 21.0, 18.2, 24.6, 23.2, "#000000")]
    svg = interval_chart(rows, "t", "revenue (currency units)")
    width = float(re.search(r'viewBox="0 0 (\d+) ', svg).group(1))
    labels = re.findall(
        r'<text x="([\d.]+)" y="[\d.]+" font-size="11" text-anchor="middle"[^>]*>([^<]+)<', svg
    )
    assert labels and labels[-1][1] == "26" and labels[0][1] == "18"
    for x, label in labels:  # centred labels stay inside the chart
        assert float(x) - text_width(label, 11) / 2 >= 0 and float(x) + text_width(label, 11) / 2 <= width
    long_label = bar_chart([("x" * 400, [3.0])], ["#000000"], "t", "decisions")
    assert "x" * 200 not in long_label  # a long label is cut, it cannot run into the bars


def _cli_with(report, tmp_path, monkeypatch, capsys, *args):
    """nba-eval's flags and printing over a given report (deciding and OPE are the harness's, tested
    above and on the demo in test_eval_cli_demo). What the run prints goes where a step's output goes."""
    from evals import cli

    def fake_run(settings):
        print("a step's own output")
        return report, tmp_path

    monkeypatch.setattr(cli, "_run", fake_run)
    code = cli.main(["--mode", "rules", "--baseline", "random", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_output_json_is_the_report_alone_on_stdout(report, tmp_path, monkeypatch, capsys):
    code, out, err = _cli_with(report, tmp_path, monkeypatch, capsys, "--output", "json")
    assert code == 0
    assert json.loads(out) == json.loads(report.model_dump_json())  # nothing else on stdout
    assert "a step's own output" in err


@pytest.mark.parametrize("output", ["table", "json"])
def test_fail_if_worse_exits_1_unless_at_least_as_good(report, tmp_path, monkeypatch, capsys, output):
    worse = report.model_copy(deep=True)
    c = worse.primary_comparison()
    c.value, c.low, c.high = -1.0, -2.0, -0.5
    good = report.model_copy(deep=True)
    c = good.primary_comparison()
    c.value, c.low, c.high = 1.0, 0.5, 2.0
    for r, flag, expected in (
        (worse, "--fail-if-worse", 1),
        (worse, "--no-fail-if-worse", 0),
        (good, "--fail-if-worse", 0),
    ):
        code, out, err = _cli_with(r, tmp_path, monkeypatch, capsys, "--output", output, flag)
        assert code == expected, (flag, out, err)
        if output == "json":
            json.loads(out)
        if expected == 1:  # the reason, in words, on stderr with json, in the summary with a table
            assert "Release check (--fail-if-worse): fails" in (
                err if output == "json" else " ".join(out.split())
            )


def test_terminal_summary_has_the_headline_and_fits_80_columns(report, tmp_path, monkeypatch, capsys):
    code, out, _ = _cli_with(report, tmp_path, monkeypatch, capsys)
    assert code == 0
    flat = " ".join(out.split())
    for c in report.comparisons:  # the same sentences as the HTML headline
        assert c.sentence in flat
    assert flat.index(report.primary_comparison().sentence) < flat.index(
        next(c for c in report.comparisons if c.metric != report.primary_metric).sentence
    )
    assert "per segment: share of the oracle's true revenue_90d" in out and "churn_rescue_nps" in out
    lines = [line for line in out.splitlines() if not line.startswith("report: ")]
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert f"report: {tmp_path / 'report.html'}" in out


def test_bad_output_value_gets_one_line(capsys):
    from evals import cli

    assert cli.main(["--output", "xml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--output" in err[0] and "json" in err[0], err

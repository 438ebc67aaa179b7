"""Render a report from simulated data in headless Chromium and find its charts in the screenshot."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from evals.harness import PolicySpec, run_eval
from evals.report import write_report
from evals.simulate import simulate_logged, simulate_world
from evals.svg import DISCOUNT_COLOR, FIXED_COLOR, POLICY_COLORS, TRUE_COLOR
from tests.evals.fakes import contexts_for, fake_decide
from tests.evals.pngread import read_png

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])


def _pixels(img: np.ndarray, hex_color: str) -> np.ndarray:
    """Row coordinates of pixels within a small tolerance of the colour."""
    diff = np.abs(img[:, :, :3].astype(int) - _rgb(hex_color)).max(axis=2)
    return np.nonzero(diff <= 6)[0]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs the Debian package)")
def test_report_charts_render_in_headless_chromium(tmp_path):
    world = simulate_world(1_000, seed=5)
    data = simulate_logged(world, 20_000, seed=6)
    segs = ("high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps")
    ctx = contexts_for(world.customer_ids, [segs[s] for s in world.segment])
    report = run_eval(
        candidate=PolicySpec(name="llm", mode="llm", prompt_version="v1", goal="90d_clv", discount_cap=10),
        baseline=PolicySpec(name="rules", mode="rules", goal="90d_clv", discount_cap=10),
        logged=data,
        contexts_by_customer=ctx,
        decide=fake_decide,
        truth=world.expected_reward,
        n_bootstrap=100,
    )
    page = write_report(report, tmp_path) / "report.html"
    png = tmp_path / "shot.png"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={png}",
        "--window-size=1280,2000",
        "--hide-scrollbars",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.exists(), f"no screenshot: {proc.stderr[-2000:]}"
    img = read_png(png.read_bytes())
    assert img.shape[:2] == (2000, 1280)
    value_rows = _pixels(img, POLICY_COLORS[0])  # baseline's interval bars
    truth_rows = _pixels(img, TRUE_COLOR)
    fixed_rows = _pixels(img, FIXED_COLOR)  # the interventions chart
    discount_rows = _pixels(img, DISCOUNT_COLOR)  # the discount histogram
    for name, rows in (
        ("value", value_rows),
        ("truth", truth_rows),
        ("interventions", fixed_rows),
        ("discounts", discount_rows),
    ):
        assert len(rows) > 200, f"{name} chart colour found in only {len(rows)} pixels"
    # the charts appear in page order: value (with truth ticks) above interventions above discounts
    assert np.median(value_rows) < np.median(fixed_rows) < np.median(discount_rows)
    assert abs(np.median(truth_rows) - np.median(value_rows)) < 200

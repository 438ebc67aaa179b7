"""Render a report from simulated data in headless Chromium, at a laptop width and at an 80-column-ish
narrow width, and find in the screenshot what a marketer must see: the headline sentence at the top,
the per-contactable-customer and per-segment charts below it, the other charts after them, and
nothing pushed past the right edge of the window."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from evals.harness import PolicySpec, run_eval
from evals.report import verdict, write_report
from evals.report_model import EvalReport
from evals.report_page import HEADLINE_BG, VERDICT_COLORS
from evals.simulate import simulate_logged, simulate_world
from evals.svg import DISCOUNT_COLOR, FIXED_COLOR, ORACLE_COLOR, POLICY_COLORS, TRUE_COLOR
from tests.evals.fakes import contexts_for, fake_decide
from tests.evals.pngread import read_png

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEIGHT = 16_000  # taller than the page at both widths: the screenshot holds all of it
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI installs the Debian package)"
)


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])


def _mask(img: np.ndarray, hex_color: str, tol: int = 6) -> np.ndarray:
    return np.abs(img[:, :, :3].astype(int) - _rgb(hex_color)).max(axis=2) <= tol


def _bands(mask: np.ndarray, min_px: int = 20) -> list[tuple[int, int, int, int]]:
    """Runs of consecutive rows with at least min_px matching pixels: (top, bottom, left, right)."""
    rows = np.flatnonzero(mask.sum(axis=1) >= min_px)
    out: list[tuple[int, int, int, int]] = []
    for run in np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1) if len(rows) else []:
        cols = np.flatnonzero(mask[run[0] : run[-1] + 1].any(axis=0))
        out.append((int(run[0]), int(run[-1]), int(cols[0]), int(cols[-1])))
    return out


@pytest.fixture(scope="module")
def report() -> EvalReport:
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
    report.data_as_of = datetime(2024, 6, 1, 14, tzinfo=UTC)
    return report


def _screenshot(page: Path, width: int, tmp_path: Path) -> np.ndarray:
    png = tmp_path / f"shot-{width}.png"
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
        f"--window-size={width},{HEIGHT}",
        "--hide-scrollbars",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.exists(), f"no screenshot: {proc.stderr[-2000:]}"
    img = read_png(png.read_bytes())
    assert img.shape[:2] == (HEIGHT, width)
    return img


@pytest.mark.parametrize("width", [1280, 640])  # a laptop; about 80 columns of 8 px
def test_report_reads_in_headless_chromium(report: EvalReport, width: int, tmp_path: Path) -> None:
    page = write_report(report, tmp_path) / "report.html"
    img = _screenshot(page, width, tmp_path)
    ink = (img[:, :, :3] < 245).any(axis=2)
    rows = np.flatnonzero(ink.any(axis=1))
    assert rows[-1] < HEIGHT - 50, "the page is taller than the screenshot"
    # nothing is pushed past the window's right edge (wide tables scroll inside their own box)
    assert not ink[:, -6:].any(), "something overflows the right edge of the window"

    # the headline: the first thing under the title, a box per comparison with its verdict's border
    boxes = _bands(_mask(img, HEADLINE_BG, tol=1), min_px=width // 3)
    assert len(boxes) >= len(report.comparisons) == 2, boxes
    top, bottom, left, right = boxes[0]
    assert top < (450 if width > 1000 else 700), f"headline starts at {top} px: not at the top"
    assert bottom - top >= 40 and right < width - 6, boxes[0]  # sentence and note, inside the window
    text = (img[top : bottom + 1, left : right + 1, :3] < 90).all(axis=2).sum()
    assert text > 1500, f"only {text} dark pixels in the headline: its sentence is missing"
    primary = report.primary_comparison()
    assert primary is not None
    border = _mask(img[top : bottom + 1, : left + 12], VERDICT_COLORS[verdict(primary)]).sum()
    assert border >= 5 * (bottom - top), "the headline's border is not its verdict's colour"

    # per contactable customer (the oracle row: one grey interval per metric) then per segment (a grey
    # oracle bar per segment and overall, per metric): every one inside the window, none squashed
    grey = _bands(_mask(img, ORACLE_COLOR), min_px=30)
    segment_count = len({v.segment for v in report.customer_values})  # "all" and the segments
    assert len(grey) == 2 + 2 * segment_count, grey
    for t, b, x0, x1 in grey:
        assert x1 < width - 6 and b - t + 1 >= 11, (t, b, x0, x1)  # 14-16 px bars, scaled >= 0.75
    assert boxes[-1][1] < grey[0][0]  # the headline above every chart
    # the charts after them: per-touch estimator check (truth ticks), interventions, discounts
    later = {
        "per-touch value": _mask(img, POLICY_COLORS[0]),
        "truth": _mask(img, TRUE_COLOR),
        "interventions": _mask(img, FIXED_COLOR),
        "discounts": _mask(img, DISCOUNT_COLOR),
    }
    for name, mask in later.items():
        assert mask.sum() > 200, f"{name} chart colour found in only {mask.sum()} pixels"
    last_segment_bar = grey[-1][1]
    per_touch = [r for r in np.flatnonzero(later["per-touch value"].any(axis=1)) if r > last_segment_bar]
    fixed = np.flatnonzero(later["interventions"].any(axis=1))
    discounts = np.flatnonzero(later["discounts"].any(axis=1))
    assert per_touch and last_segment_bar < np.median(per_touch) < np.median(fixed) < np.median(discounts)

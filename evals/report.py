"""Write an EvalReport as report.json plus a self-contained report.html, and store it in ops.eval_runs.

The HTML is written for the marketer who decides whether to ship the candidate: a headline
sentence per comparison first, then the value per contactable customer (with the oracle, each
policy's share of it and its lift over no contact), what each constraint costs the oracle, the same
per segment, a glossary of every term, and only then the estimator
check per logged touch, the prompt table, guardrail interventions, discounts, scorers and cases.
One file: inline CSS and SVG (evals.svg), no script, no external URL; all text is autoescaped.
Files are written atomically (temp file in the same directory, then os.replace).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
from jinja2 import Environment, StrictUndefined, select_autoescape

from evals.report_model import Comparison, CustomerValue, EvalReport
from evals.report_page import GLOSSARY, HEADLINE_BG, PAGE, SCORER_HELP, VERDICT_COLORS
from evals.svg import (
    DISCOUNT_COLOR,
    FAILED_COLOR,
    FIXED_COLOR,
    ORACLE_COLOR,
    POLICY_COLORS,
    Bar,
    IntervalRow,
    bar_chart,
    grouped_bar_chart,
    interval_chart,
)
from warehouse.ops_tables import ensure_ops_tables
from warehouse.ownership import owned_dir

ORACLE = "oracle"


class MetricInfo(NamedTuple):
    title: str  # "Revenue over 90 days"
    axis: str  # axis title: the quantity and its unit
    difference_unit: str  # unit of a difference, as in the comparison sentence
    scale: float  # stored value x scale = shown value
    fmt: Callable[[float], str]


METRIC_INFO = {
    "revenue_90d": MetricInfo(
        "Revenue over 90 days",
        "revenue over 90 days per contactable customer (currency units)",
        "revenue (90 days)",
        1.0,
        lambda v: f"{v:,.2f}",
    ),
    "converted_14d": MetricInfo(
        "Conversion within 14 days",
        "customers converting within 14 days (% of contactable customers)",
        "conversion points",
        100.0,
        lambda v: f"{v:.1f}%",
    ),
}


def metric_info(metric: str) -> MetricInfo:
    return METRIC_INFO.get(metric, MetricInfo(metric, metric, metric, 1.0, lambda v: f"{v:,.4g}"))


def shown_value(metric: str, x: float | None) -> str:
    """A stored value as the report shows it (revenue 2 decimals, conversions as a percentage)."""
    m = metric_info(metric)
    return "-" if x is None else m.fmt(x * m.scale)


def verdict(c: Comparison) -> str:
    """better / worse / unclear: where the 95% interval of candidate - baseline lies."""
    return "better" if c.low > 0 else "worse" if c.high < 0 else "unclear"


def truth_note(c: Comparison) -> str:
    """The generator's true difference in the sentence's unit ('' without a truth)."""
    if c.true_value is None:
        return ""
    m = metric_info(c.metric)
    return f"true difference (from the generator): {c.true_value * m.scale:+.2f} {m.difference_unit}"


def gate_sentence(report: EvalReport) -> str:
    """What `nba-eval --fail-if-worse` decides, in words."""
    c = report.primary_comparison()
    if c is None:
        return "Release check (--fail-if-worse): fails, no customer could be contacted, so there is no comparison."
    m = metric_info(c.metric)
    low = f"{c.low * m.scale:+.2f} {m.difference_unit}"
    if report.not_worse():
        return (
            f"Release check (--fail-if-worse): passes. On {c.metric}, the low end of the 95% interval of "
            f"{report.candidate['name']} - {report.baseline['name']} per contactable customer is {low}, "
            "at or above zero."
        )
    return (
        f"Release check (--fail-if-worse): fails. On {c.metric}, the low end of the 95% interval of "
        f"{report.candidate['name']} - {report.baseline['name']} per contactable customer is {low}, "
        "below zero: the candidate is not shown to be at least as good (with --fail-if-worse, nba-eval exits 1)."
    )


def ordered_comparisons(report: EvalReport) -> list[Comparison]:
    """The primary metric's comparison first."""
    return sorted(report.comparisons, key=lambda c: c.metric != report.primary_metric)


def _when(t: datetime | None) -> str:
    if t is None:
        return "not recorded"
    return t.strftime("%Y-%m-%d %H:%M UTC") if t.utcoffset() is not None else t.strftime("%Y-%m-%d %H:%M")


def _fmt(x: Any) -> str:
    return "-" if x is None or x != x else f"{x:,.4g}"


def _share(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _pct(value: Any, true: Any) -> str:
    return "-" if value is None or not true else f"{100 * (value / true - 1):+.1f}%"


def _result(passed: bool | None) -> str:
    return "measured" if passed is None else "pass" if passed else "FAIL"


def _failures(failures: list[str], k: int = 5) -> tuple[list[str], int]:
    """The first k failures and how many more there are (the scorer's own "... and N more" counted)."""
    listed = [f for f in failures if not f.startswith("... and ")]
    marker = next((f for f in failures if f.startswith("... and ")), "").split()
    extra = int(marker[2]) if len(marker) > 2 and marker[2].isdigit() else 0
    return listed[:k], max(len(listed) - k, 0) + extra


def _scorer_value(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name == "discount_cost":
        return f"{value:.2f}% mean discount"
    if name == "sms_segments":
        return f"{value:.2f} segments per SMS"
    if name == "tokens_latency":
        return f"{value:,.0f} tokens per decision"
    return f"{100 * value:.1f}%"


class _View:
    """What the template needs, computed once: policy order, roles, colours, table rows, charts."""

    def __init__(self, report: EvalReport) -> None:
        self.r = report
        cand, base = report.candidate["name"], report.baseline["name"]
        seen = dict.fromkeys(
            [*(v.policy for v in report.policy_values), *(v.policy for v in report.customer_values)]
        )
        first = [p for p in (base, cand) if p in seen]
        rest = [p for p in seen if p not in first and p != ORACLE]
        self.policies = first + rest + ([ORACLE] if ORACLE in seen else [])
        self.roles = {p: "reference" for p in self.policies} | {base: "baseline", cand: "candidate"}
        self.roles[ORACLE] = "best allowed action"
        self.colors = {p: POLICY_COLORS[i % len(POLICY_COLORS)] for i, p in enumerate(self.policies)}
        self.colors[ORACLE] = ORACLE_COLOR
        self.metrics = sorted(
            dict.fromkeys(v.metric for v in report.customer_values), key=lambda m: m != report.primary_metric
        )
        self.segments = sorted({v.segment for v in report.customer_values if v.segment != "all"})

    def cv(self, policy: str, metric: str, segment: str = "all") -> CustomerValue | None:
        try:
            return self.r.customer_value(policy, metric, segment)
        except KeyError:
            return None

    def shown(self, metric: str, x: float | None) -> str:
        return shown_value(metric, x)

    def customer_chart(self, metric: str) -> str:
        m = metric_info(metric)
        rows = []
        for p in self.policies:
            v = self.cv(p, metric)
            if v is None:
                continue
            s = [None if x is None else x * m.scale for x in (v.dr_value, v.dr_low, v.dr_high, v.true_value)]
            rows.append(IntervalRow(p, s[0], s[1], s[2], s[3], self.colors[p]))
        return interval_chart(rows, f"{m.title}: DR estimate per contactable customer", m.axis, "DR estimate")

    def segment_chart(self, metric: str) -> str:
        m = metric_info(metric)
        groups = []
        for seg in ["all", *self.segments]:
            bars = []
            for p in self.policies:
                v = self.cv(p, metric, seg)
                if v is None or v.true_value is None:
                    continue
                note = (
                    "" if p == ORACLE or v.share_of_oracle is None else f"{v.share_of_oracle:.0%} of oracle"
                )
                bars.append(Bar(p, v.true_value * m.scale, self.colors[p], note))
            n = next((v.customers for p in self.policies if (v := self.cv(p, metric, seg))), 0)
            name = "all contactable customers" if seg == "all" else seg
            if bars:
                groups.append((f"{name} ({n:,} customers)", bars))
        return grouped_bar_chart(
            groups, f"{m.title}: true value per contactable customer, by segment", m.axis, m.fmt
        )

    def value_chart(self) -> str:
        rows = [
            IntervalRow(
                f"{v.policy} / {v.estimator}", v.value, v.low, v.high, v.true_value, self.colors[v.policy]
            )
            for v in self.r.policy_values
            if v.metric == self.r.primary_metric
        ]
        return interval_chart(
            rows,
            f"Estimator check: {self.r.primary_metric} per logged touch",
            metric_info(self.r.primary_metric).axis.replace("contactable customer", "logged touch"),
            "estimate (IPS, SNIPS or DR)",
        )

    def interventions(self) -> tuple[str, list[str]]:
        """The chart of checks that changed or stopped a decision, and the checks that never did."""
        items, quiet = [], []
        for policy, scores in self.r.scores.items():
            s = {x.name: x for x in scores}
            by_check = (
                s["guardrail_interventions"].details["by_check"] if "guardrail_interventions" in s else {}
            )
            for check, counts in by_check.items():
                if counts.get("fixed", 0) + counts.get("failed", 0):
                    items.append((f"{check} · {policy}", [counts.get("fixed", 0), counts.get("failed", 0)]))
                else:
                    quiet.append(check)
        items.sort(key=lambda t: t[0])
        chart = bar_chart(
            items,
            [FIXED_COLOR, FAILED_COLOR],
            "Guardrail interventions by check and policy",
            "decisions (fixed: changed, e.g. deferred or clamped; failed: stopped)",
            legend=["fixed", "failed"],
        )
        return chart, sorted(set(quiet) - {i[0].split(" · ")[0] for i in items})

    def discounts(self) -> str:
        items = []
        for policy, scores in self.r.scores.items():
            s = {x.name: x for x in scores}
            dist = s["discount_cost"].details.get("distribution", {}) if "discount_cost" in s else {}
            for k in sorted(dist, key=lambda k: float(k)):
                items.append((f"{policy}: {float(k):g}% off", [float(dist[k])]))
        return bar_chart(items, [DISCOUNT_COLOR], "Decisions per final discount", "decisions")


def render_html(report: EvalReport) -> str:
    view = _View(report)
    interventions_svg, quiet_checks = view.interventions()
    env = Environment(
        autoescape=select_autoescape(default=True, default_for_string=True), undefined=StrictUndefined
    )
    env.globals.update(
        fmt=_fmt,
        share=_share,
        pct=_pct,
        result=_result,
        scorer_value=_scorer_value,
        when=_when,
        failures=_failures,
        num=lambda x: f"{x:g}",
        metric_title=lambda m: metric_info(m).title,
    )
    return env.from_string(PAGE).render(
        r=report,
        v=view,
        comparisons=[(c, verdict(c), truth_note(c)) for c in ordered_comparisons(report)],
        gate=gate_sentence(report),
        gate_ok=report.not_worse(),
        glossary=GLOSSARY,
        colors=VERDICT_COLORS,
        headline_bg=HEADLINE_BG,
        scorer_help=SCORER_HELP,
        customer_svgs=[view.customer_chart(m) for m in view.metrics],
        segment_svgs=[view.segment_chart(m) for m in view.metrics] if report.has_truth else [],
        value_svg=view.value_chart(),
        interventions_svg=interventions_svg,
        quiet_checks=quiet_checks,
        discount_svg=view.discounts(),
    )


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a report is for sharing (it holds no secret)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: EvalReport, directory: Path | None = None) -> Path:
    """Write report.json and report.html under <reports_dir>/eval-<id>/ and return that folder."""
    out = (directory or owned_dir("reports")) / f"eval-{report.eval_id}"
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "report.json", report.model_dump_json(indent=2))
    _atomic_write(out / "report.html", render_html(report))
    return out


def store_eval_run(con: duckdb.DuckDBPyConnection, report: EvalReport) -> None:
    """Insert one row into ops.eval_runs (created if missing, same DDL as create_ops_tables.sql)."""
    ensure_ops_tables(con)  # the one DDL: the dbt macro create_ops_tables
    con.execute(
        "insert into ops.eval_runs values (?, ?, ?, ?, ?, ?)",
        [
            report.eval_id,
            report.created_at.replace(tzinfo=None),
            report.candidate["name"],
            report.baseline["name"],
            report.sample_size,
            report.model_dump_json(),
        ],
    )

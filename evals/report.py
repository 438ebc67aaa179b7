"""Write an EvalReport as report.json plus a self-contained report.html, and store it in ops.eval_runs.

The HTML has no external JS or CSS: styles are inline and charts are SVG generated in evals.svg.
Files are written atomically (temp file in the same directory, then os.replace).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, StrictUndefined, select_autoescape

from evals.report_model import EvalReport
from evals.svg import DISCOUNT_COLOR, FAILED_COLOR, FIXED_COLOR, POLICY_COLORS, bar_chart, interval_chart
from warehouse.ops_tables import ensure_ops_tables
from warehouse.paths import reports_dir

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eval {{ r.eval_id }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
table { border-collapse: collapse; margin: 8px 0 24px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.pass { color: #1a7f37; } .fail { color: #b42318; } .muted { color: #777; }
</style></head><body>
<h1>Eval {{ r.eval_id }}: {{ r.candidate.name }} vs {{ r.baseline.name }}</h1>
<p class="muted">created {{ r.created_at }} &middot; seed {{ r.seed }} &middot; {{ r.sample_size }} customers,
{{ r.n_logged }} logged touches &middot; truth {{ "known" if r.has_truth else "unknown" }}.
Policy value = expected reward per logged touch of the policy's action; no action earns 0.</p>
{% for metric, d in r.difference.items() %}
<p><b>Candidate - baseline (DR, {{ metric }}):</b> {{ fmt(d.value) }} [{{ fmt(d.low) }}, {{ fmt(d.high) }}]</p>
{% endfor %}
<h2>Policy value</h2>
<div id="chart-value">{{ value_svg | safe }}</div>
<table><tr><th>policy</th><th>estimator</th><th>metric</th><th>value</th><th>95% interval</th><th>true</th>
<th>error</th><th>covers</th><th>ESS</th><th>support (actions / rows)</th></tr>
{% for v in r.policy_values %}<tr><td>{{ v.policy }}</td><td>{{ v.estimator }}</td><td>{{ v.metric }}</td>
<td>{{ fmt(v.value) }}</td><td>[{{ fmt(v.low) }}, {{ fmt(v.high) }}]</td><td>{{ fmt(v.true_value) }}</td>
<td>{{ pct(v.value, v.true_value) }}</td><td>{{ "-" if v.covers_truth is none else ("yes" if v.covers_truth else "NO") }}</td>
<td>{{ "%.0f" | format(v.ess) }}</td><td>{{ "%.2f / %.2f" | format(v.support_action_share, v.support_row_share) }}</td></tr>
{% endfor %}</table>
<h2>Prompt versions</h2>
<table><tr><th>policy</th><th>mode</th><th>prompt</th><th>schema valid</th><th>fallback</th><th>interventions</th>
<th>mean discount</th><th>tokens</th><th>latency ms</th><th>OPE value (DR, revenue)</th></tr>
{% for p in r.prompt_versions %}<tr><td>{{ p.policy }}</td><td>{{ p.mode }}</td><td>{{ p.prompt_version }}</td>
<td>{{ share(p.schema_validity) }}</td><td>{{ share(p.fallback_rate) }}</td><td>{{ share(p.intervention_rate) }}</td>
<td>{{ fmt(p.mean_discount) }}</td><td>{{ fmt(p.mean_tokens) }}</td><td>{{ fmt(p.mean_latency_ms) }}</td>
<td>{{ fmt(p.ope_value) }} [{{ fmt(p.ope_low) }}, {{ fmt(p.ope_high) }}]</td></tr>{% endfor %}</table>
<h2>Guardrail interventions by check</h2>
<div id="chart-interventions">{{ interventions_svg | safe }}</div>
<h2>Discount distribution</h2>
<div id="chart-discounts">{{ discount_svg | safe }}</div>
<h2>Scorers</h2>
{% for policy, scores in r.scores.items() %}<h3>{{ policy }}</h3><table>
<tr><th>scorer</th><th>value</th><th>passed</th><th>failures (first)</th></tr>
{% for s in scores %}<tr><td>{{ s.name }}</td><td>{{ fmt(s.value) }}</td>
<td class="{{ 'muted' if s.passed is none else ('pass' if s.passed else 'fail') }}">{{ "-" if s.passed is none else s.passed }}</td>
<td>{{ s.failures[:3] | join("; ") }}</td></tr>{% endfor %}</table>{% endfor %}
<h2>Golden and adversarial cases</h2>
<table><tr><th>suite</th><th>case</th><th>policy</th><th>passed</th><th>failures</th></tr>
{% for c in r.cases %}<tr><td>{{ c.suite }}</td><td>{{ c.name }}</td><td>{{ c.policy }}</td>
<td class="{{ 'pass' if c.passed else 'fail' }}">{{ c.passed }}</td><td>{{ c.failures | join("; ") }}</td></tr>{% endfor %}
</table></body></html>
"""


def _fmt(x: Any) -> str:
    return "-" if x is None or x != x else f"{x:.4g}"


def _share(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _pct(value: Any, true: Any) -> str:
    return "-" if value is None or not true else f"{100 * (value / true - 1):+.1f}%"


def render_html(report: EvalReport) -> str:
    policies = list(dict.fromkeys(v.policy for v in report.policy_values))
    color = {p: POLICY_COLORS[i % len(POLICY_COLORS)] for i, p in enumerate(policies)}
    nan = float("nan")
    rows = [
        (
            f"{v.policy} / {v.estimator}",
            v.value if v.value is not None else nan,
            v.low if v.low is not None else nan,
            v.high if v.high is not None else nan,
            v.true_value,
            color[v.policy],
        )
        for v in report.policy_values
        if v.metric == "revenue_90d"
    ]
    value_svg = interval_chart(rows, "Policy value, revenue_90d per touch (bar: 95% interval, red: truth)")
    interventions, discounts = [], []
    for policy, scores in report.scores.items():
        s = {x.name: x for x in scores}
        for check, counts in s["guardrail_interventions"].details["by_check"].items():
            interventions.append((f"{policy}: {check}", [counts["fixed"], counts["failed"]]))
        dist = Counter({k: v for k, v in s["discount_cost"].details["distribution"].items()})
        discounts += [(f"{policy}: {k}%", [float(v)]) for k, v in dist.items()]
    env = Environment(
        autoescape=select_autoescape(default=True, default_for_string=True), undefined=StrictUndefined
    )
    env.globals.update(fmt=_fmt, share=_share, pct=_pct)
    return env.from_string(PAGE).render(
        r=report,
        value_svg=value_svg,
        interventions_svg=bar_chart(
            interventions, [FIXED_COLOR, FAILED_COLOR], "Interventions by check", legend=["fixed", "failed"]
        ),
        discount_svg=bar_chart(discounts, [DISCOUNT_COLOR], "Decisions per final discount"),
    )


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: EvalReport, directory: Path | None = None) -> Path:
    """Write report.json and report.html under <reports_dir>/eval-<id>/ and return that folder."""
    out = (directory or reports_dir()) / f"eval-{report.eval_id}"
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

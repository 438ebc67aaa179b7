"""The `activate` command end to end on a real dbt-built warehouse: dry run, live run against the local
HubSpot / Salesforce / webhook servers over real HTTP, and the contact ledger feeding the next run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from activation.cli import main as activate_main
from activation.run import run_activation
from activation.settings import ActivateSettings
from activation.summary import RunSummary
from core.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def activate(**given: object) -> RunSummary:
    """One activate run with these settings (and the environment's NBA_* for the rest)."""
    return run_activation(load_settings(ActivateSettings, **given))


def _count(db: Path, sql: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute(sql).fetchall()[0][0])
    finally:
        con.close()


def test_dry_run_writes_outbox_and_never_touches_the_ledger(
    warehouse_copy: Path, tmp_path: Path, capsys
) -> None:
    rc = activate_main(["activate", "--mode", "rules", "--dry-run", "--output", "json", "--no-progress"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("run_id", "mode", "segment", "dry_run", "counts", "fallbacks", "clamped", "outbox"):
        assert key in summary
    assert set(summary["counts"]) == {"send", "suppressed", "deferred", "holdout", "no_action"}
    assert summary["dry_run"] is True and summary["counts"]["send"] > 0 and summary["counts"]["holdout"] > 0
    outbox = Path(summary["outbox"])
    assert outbox.parent == tmp_path / "nba_outbox_dir"
    names = {p.name for p in outbox.iterdir()}
    assert names == {
        "hubspot.jsonl",
        "salesforce.jsonl",
        "webhook.jsonl",
        "manifest.json",
        "guardrail_impact.json",
        "plan.json",
        "plan.jsonl",
        "plan.txt",
    }
    hubspot_lines = (outbox / "hubspot.jsonl").read_text().splitlines()
    assert len(hubspot_lines) == summary["counts"]["send"]
    manifest = json.loads((outbox / "manifest.json").read_text())
    assert manifest["destinations"]["hubspot"]["dry_run"] == summary["counts"]["send"]
    impact = json.loads((outbox / "guardrail_impact.json").read_text())
    checks = impact["checks"]
    assert checks and all({"pass", "fixed", "failed"} <= set(v) for v in checks.values())
    assert {st: o["decisions"] for st, o in impact["outcomes"].items()} == {
        k: v for k, v in summary["counts"].items() if v
    }
    assert not list(outbox.parent.glob("*.tmp*")), "the outbox is written atomically"
    # Nothing sent, the ledger untouched; every decision logged with its guardrail report.
    assert _count(warehouse_copy, "select count(*) from ops.contact_ledger") == 0
    logged = _count(
        warehouse_copy, f"select count(*) from ops.decision_log where run_id = '{summary['run_id']}'"
    )
    assert logged == sum(summary["counts"].values())
    holdout_sent = "select count(*) from ops.decision_log where arm = 'holdout' and status = 'send'"
    assert _count(warehouse_copy, holdout_sent) == 0


def test_invalid_arguments_get_one_line_and_exit_2() -> None:
    for args, needle, valid in (
        (["--segment", "vip"], "--segment", "one of 'all', 'high_value_lapse_risk'"),
        (["--discount-cap", "150"], "--discount-cap", "from 0 to 100"),
        (["--mode", "gpt"], "--mode", "one of 'rules', 'learned' or 'llm'"),
        (["--limit", "0"], "--limit", ">= 1"),
        (["--suppress-hours", "inf"], "--suppress-hours", "from 0 to 8760"),
        (["--as-of", "9999-12-31T23:59:59"], "--as-of", "between 2000-01-01 and 2100-01-01"),
        (["--prompt-version", "../../etc"], "--prompt-version", "a folder under agent/prompts/nba/"),
        (["--dry-run", "2"], "nba-activate activate", "unexpected extra argument"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "activation.cli", "activate", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and valid in lines[0], lines


def test_live_run_delivers_once_and_the_ledger_suppresses_the_next_run(warehouse_copy: Path, servers) -> None:
    hs, sf, wh = servers.all()
    first = activate(mode="rules", segment="all", dry_run=False)
    sends = first.counts["send"]
    assert sends > 0
    for name in ("hubspot", "salesforce", "webhook"):
        assert first.destinations[name]["delivered"] == sends, first.destinations
    assert hs.stats()["unique_records"] == sends
    assert wh.stats()["unique_records"] == sends
    ledger = _count(warehouse_copy, "select count(*) from ops.contact_ledger")
    assert ledger == 3 * sends  # one row per delivered decision per destination

    # Same day, inside SUPPRESS_HOURS: everyone just contacted is suppressed; nothing new is sent.
    second = activate(mode="rules", segment="all", dry_run=False, force=True)
    assert second.counts["send"] == 0
    assert second.reasons.get("suppression_window", 0) >= sends
    assert _count(warehouse_copy, "select count(*) from ops.contact_ledger") == ledger
    assert hs.stats()["unique_records"] == sends


def test_holdout_lift_from_simulated_outcomes(warehouse_copy: Path) -> None:
    """Dry run -> synthetic outcomes from the truth -> dbt builds the lift mart over them."""
    from warehouse.dbt_runner import run_dbt
    from warehouse.outcomes import simulate_outcomes

    summary = activate(mode="rules", segment="all", dry_run=True)
    con = duckdb.connect(str(warehouse_copy))
    n = simulate_outcomes(con, summary.run_id, seed=1)
    con.close()
    assert n == summary.counts["send"] + summary.counts["holdout"]
    run_dbt(["build", "--select", "mart_marketing__holdout_lift"])
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    rows = con.execute(
        "select segment, treatment_customers, holdout_customers, conversion_lift "
        "from main.mart_marketing__holdout_lift order by segment"
    ).fetchall()
    con.close()
    assert {r[0] for r in rows} == set(summary.by_segment)
    assert all(r[1] > 0 and r[2] > 0 and r[3] is not None for r in rows)


def test_live_run_without_destination_settings_fails_before_writing_anything(
    warehouse_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBA_DESTINATIONS", "hubspot")
    monkeypatch.delenv("NBA_HUBSPOT__TOKEN", raising=False)
    with pytest.raises(Exception, match="NBA_HUBSPOT__TOKEN"):
        activate(mode="rules", segment="all", dry_run=False)
    assert _count(warehouse_copy, "select count(*) from ops.decision_log") == 0
    assert _count(warehouse_copy, "select count(*) from ops.run_log") == 0

"""dbt docs (exposures, docs blocks, served without regenerating) and source freshness on the data's
clock (issue 16)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import duckdb
import pytest

from testing.demo_warehouse import DemoWarehouse, warehouse_env
from warehouse import cli, docs
from warehouse.dbt_runner import dbt_command, dbt_executable
from warehouse.errors import DbtFailed, WarehouseError

RAW_WITH_FRESHNESS = {
    "raw.campaign_touches",
    "raw.customers",
    "raw.marketing_spend",
    "raw.nps_responses",
    "raw.orders",
    "raw.suppression_list",
    "raw.web_events",
}


@pytest.fixture(scope="module")
def generated(demo_warehouse: DemoWarehouse) -> Path:
    """`nba-warehouse docs` on the demo warehouse, once for this module."""
    with warehouse_env(demo_warehouse):
        return docs.docs()


def test_docs_show_the_exposures_and_the_segment_docs_blocks(generated: Path) -> None:
    manifest = json.loads((generated / "manifest.json").read_text())
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) == {"activation_run", "offline_eval", "bi_exports"}
    assert (
        "model.nba_warehouse.mart_marketing__customer_360"
        in exposures["activation_run"]["depends_on"]["nodes"]
    )
    assert (
        "model.nba_warehouse.mart_marketing__campaign_history"
        in exposures["offline_eval"]["depends_on"]["nodes"]
    )
    assert "model.nba_warehouse.dim_customer" in exposures["bi_exports"]["depends_on"]["nodes"]
    scores = manifest["nodes"]["model.nba_warehouse.mart_marketing__segment_scores"]
    assert "a valuable buyer who is late" in scores["columns"]["score_high_value_lapse_risk"]["description"]
    assert "churn_rescue_nps > high_value_lapse_risk" in scores["columns"]["segment"]["description"]
    assert set(manifest["docs"]) >= {
        "doc.nba_warehouse.segment_churn_rescue_nps",
        "doc.nba_warehouse.__overview__",
    }
    catalog = json.loads((generated / "catalog.json").read_text())
    assert "model.nba_warehouse.mart_marketing__customer_360" in catalog["nodes"]


def test_serve_docs_answers_from_the_generated_docs_without_regenerating(
    generated: Path, demo_warehouse: DemoWarehouse
) -> None:
    with warehouse_env(demo_warehouse):
        assert docs.docs_are_current()
        stamp = (generated / "catalog.json").stat().st_mtime_ns
        server = docs.docs_server(port=0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            base = f"http://127.0.0.1:{server.server_address[1]}"
            with urllib.request.urlopen(f"{base}/", timeout=10) as r:
                assert r.status == 200 and b"dbt" in r.read()
            with urllib.request.urlopen(f"{base}/manifest.json", timeout=10) as r:
                assert "exposure.nba_warehouse.bi_exports" in json.loads(r.read())["exposures"]
            with pytest.raises(WarehouseError, match="cannot serve the docs on 127.0.0.1"):
                docs.docs_server(port=server.server_address[1])  # the port is taken: one line
        finally:
            server.shutdown()
            server.server_close()
        assert (generated / "catalog.json").stat().st_mtime_ns == stamp, "served without generating"


def test_docs_are_stale_when_older_than_the_warehouse(
    generated: Path, tmp_path: Path, demo_warehouse
) -> None:
    copy = tmp_path / "target"
    shutil.copytree(generated, copy, ignore=shutil.ignore_patterns("compiled", "run"))
    os.utime(copy / "catalog.json", (0, 0))
    with warehouse_env(demo_warehouse):
        assert docs.docs_are_current(copy) is False


def test_dbt_runs_without_the_runpy_warning() -> None:
    cmd = dbt_command(["debug"])
    assert cmd[:3] != [sys.executable, "-m", "dbt.cli.main"]
    proc = subprocess.run([*dbt_executable(), "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "RuntimeWarning" not in proc.stderr, proc.stderr


def test_source_freshness_passes_on_the_demo_data(demo_warehouse_env: DemoWarehouse, capsys) -> None:
    assert cli.main(["freshness"]) == 0
    assert "raw.web_events: pass" in capsys.readouterr().out
    results = docs.read_freshness(demo_warehouse_env.target_dir / "sources.json")
    assert {r.source for r in results} == RAW_WITH_FRESHNESS
    assert all(r.status == "pass" for r in results), results
    behind = {r.source: r.hours_behind for r in results}
    assert behind["raw.web_events"] is not None and 0 < behind["raw.web_events"] < 12  # on the data's clock


def _drop_after(table: Path, column: str, hours_before_as_of: int, as_of: str) -> None:
    """Cut a raw table short: drop its rows of the last `hours_before_as_of` hours before as_of."""
    tmp = table.with_suffix(".tmp")
    duckdb.execute(
        f"copy (select * from '{table}' where {column} < timestamp '{as_of}' - interval {hours_before_as_of} hour) "
        f"to '{tmp}' (format parquet)"
    )
    os.replace(tmp, table)


def test_a_source_that_stopped_short_fails_freshness_and_a_late_one_warns(
    demo_warehouse: DemoWarehouse, tmp_path: Path, monkeypatch
) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(demo_warehouse.raw_dir, raw)
    as_of = str(demo_warehouse.as_of)
    _drop_after(raw / "campaign_touches.parquet", "touched_at", 30, as_of)  # error after 24 h
    _drop_after(raw / "web_events.parquet", "event_at", 13, as_of)  # warn after 12 h
    for key, value in demo_warehouse.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NBA_RAW_DIR", str(raw))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    with pytest.raises(DbtFailed) as info:
        docs.freshness()
    assert info.value.failures == ["raw.campaign_touches"]
    assert "raw.campaign_touches (error, 30." in str(info.value) and "\n" not in str(info.value)
    statuses = {r.source: r.status for r in docs.read_freshness(tmp_path / "target" / "sources.json")}
    assert statuses["raw.web_events"] == "warn" and statuses["raw.orders"] == "pass"

"""The daily DAG under real Apache Airflow (its own virtualenv, SQLite metadata DB in a temp dir).

Runs with the main venv's pytest and shells out to the Airflow venv, so Airflow's pins never touch
the project's environment. `make test-airflow` creates that venv (NBA_AIRFLOW_VENV, default
.venv-airflow) and runs this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FOLDER = REPO_ROOT / "orchestration"
EXPECTED_EDGES = {
    "prepare_data": ["dbt_build"],
    "dbt_build": ["dbt_test"],
    "dbt_test": ["activate"],
    "activate": ["evaluate"],
    "evaluate": [],
}
EXPECTED_PARAMS = {"segment", "mode", "goal", "discount_cap", "suppress_hours", "dry_run"}
RUN_DATE = "2026-11-27"


def _airflow_venv() -> Path:
    venv = Path(os.environ.get("NBA_AIRFLOW_VENV") or REPO_ROOT / ".venv-airflow")
    if not venv.is_absolute():
        venv = REPO_ROOT / venv
    if not (venv / "bin" / "airflow").exists():
        pytest.fail(
            f"no Airflow virtualenv at {venv} (NBA_AIRFLOW_VENV): `make test-airflow` creates it "
            "(orchestration/setup_airflow_venv.sh) and runs these tests",
            pytrace=False,
        )
    return venv


@pytest.fixture
def airflow_env(tmp_path: Path) -> dict[str, str]:
    """Airflow home, metadata DB and every NBA_* path in a temp dir; the project python is the main venv's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NBA_", "DBT_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}",
            "NBA_REPO_ROOT": str(REPO_ROOT),
            "NBA_PYTHON": sys.executable,
            "NBA_RAW_DIR": str(tmp_path / "raw"),
            "NBA_TRUTH_DIR": str(tmp_path / "truth"),
            "NBA_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
            "NBA_OUTBOX_DIR": str(tmp_path / "outbox"),
            "NBA_REPORTS_DIR": str(tmp_path / "reports"),
            "NBA_CACHE_DIR": str(tmp_path / "cache"),
            "NBA_BI_DIR": str(tmp_path / "bi"),
            "DBT_TARGET_PATH": str(tmp_path / "dbt_target"),
            "DBT_LOG_PATH": str(tmp_path / "dbt_logs"),
        }
    )
    (tmp_path / "airflow").mkdir()
    return env


def _run(cmd: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, cwd=REPO_ROOT, text=True, capture_output=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


_DAGBAG_SCRIPT = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={folder!r})
dag = bag.dags.get("nba_daily")
print("RESULT " + json.dumps({{
    "import_errors": {{str(k): str(v) for k, v in bag.import_errors.items()}},
    "dag_ids": sorted(bag.dags),
    "edges": {{t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}} if dag else {{}},
    "retries": {{t.task_id: t.retries for t in dag.tasks}} if dag else {{}},
    "params": sorted(dag.params.keys()) if dag else [],
    "schedule": str(getattr(dag.timetable, "expression", None) or getattr(dag, "schedule", None)) if dag else None,
}}))
"""

_STATES_SCRIPT = """
import json
from airflow.models import DagRun, TaskInstance
from airflow.utils.session import create_session
with create_session() as s:
    runs = [(r.run_id, str(r.state)) for r in s.query(DagRun).filter(DagRun.dag_id == "nba_daily")]
    tis = {ti.task_id: str(ti.state) for ti in s.query(TaskInstance).filter(TaskInstance.dag_id == "nba_daily")}
print("RESULT " + json.dumps({"runs": runs, "tasks": tis}))
"""


def _result(stdout: str) -> dict:
    line = next(x for x in reversed(stdout.splitlines()) if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_dag_loads_with_expected_graph(airflow_env: dict[str, str]) -> None:
    venv = _airflow_venv()
    proc = _run(
        [str(venv / "bin" / "python"), "-c", _DAGBAG_SCRIPT.format(folder=str(DAG_FOLDER))], airflow_env
    )
    got = _result(proc.stdout)
    assert got["import_errors"] == {}
    assert got["dag_ids"] == ["nba_daily"], "only airflow_dag.py may define DAGs (.airflowignore)"
    assert got["edges"] == EXPECTED_EDGES
    assert set(got["params"]) >= EXPECTED_PARAMS
    assert got["schedule"] in ("0 0 * * *", "@daily", "At 00:00"), got["schedule"]
    assert all(got["retries"][t] >= 1 for t in ("prepare_data", "dbt_build", "dbt_test", "activate"))


def test_dags_test_runs_end_to_end_on_demo_data(airflow_env: dict[str, str], tmp_path: Path) -> None:
    venv = _airflow_venv()
    airflow = str(venv / "bin" / "airflow")
    airflow_env["NBA_AIRFLOW_RETRIES"] = "0"  # a failure in the test run must show at once, not after retries
    _run([airflow, "db", "migrate"], airflow_env)
    conf = {"demo_customers": 2000, "eval_sample": 20, "segment": "all", "mode": "rules", "dry_run": True}
    proc = _run([airflow, "dags", "test", "nba_daily", RUN_DATE, "--conf", json.dumps(conf)], airflow_env)
    log = proc.stdout + proc.stderr

    states = _result(_run([str(venv / "bin" / "python"), "-c", _STATES_SCRIPT], airflow_env).stdout)
    assert len(states["runs"]) == 1 and states["runs"][0][1].endswith("success"), states
    assert set(states["tasks"]) == set(EXPECTED_EDGES)
    assert all(state.endswith("success") for state in states["tasks"].values()), states["tasks"]

    # The tasks really ran the project against the temp paths (not the repo's warehouse).
    assert (tmp_path / "raw" / "_meta.json").exists()
    assert json.loads((tmp_path / "raw" / "_meta.json").read_text())["customers"] == 2000
    assert (tmp_path / "warehouse.duckdb").exists()
    runs = [p for p in (tmp_path / "outbox").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["dry_run"] is True and manifest["mode"] == "rules"
    assert manifest["decisions"] > 0 and manifest["counts"]["send"] > 0, manifest
    assert any(
        (runs[0] / f).stat().st_size > 0
        for f in ("hubspot.jsonl", "salesforce.jsonl", "webhook.jsonl")
        if (runs[0] / f).exists()
    ), "no decision reached the outbox"
    reports = list((tmp_path / "reports").glob("eval-*/report.json"))
    assert len(reports) == 1, reports
    assert json.loads(reports[0].read_text())
    assert "--dry-run" in log and "--live" not in log and "--output json" in log, (
        "the activate task must run a dry run by default"
    )

"""The daily DAG under real Apache Airflow 3 (its own virtualenv with astronomer-cosmos, SQLite
metadata DB in a temp dir), with the project's tasks in the project's virtualenv.

Runs with the main venv's pytest and shells out to the Airflow venv, so Airflow's pins never touch
the project's environment. `make test-airflow` creates that venv (NBA_AIRFLOW_VENV, default
.venv-airflow) and runs this file. One Airflow home for the module (migrated once); each test run
gets its own data paths. The alert webhook is a local receiver on 127.0.0.1 that checks the
destination webhook's signature.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.contracts import GOALS, SEGMENTS
from core.policy_kinds import run_modes
from testing.local_servers.alerts import AlertReceiver

pytestmark = pytest.mark.airflow

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FOLDER = REPO_ROOT / "orchestration"
DBT_DIR = REPO_ROOT / "warehouse" / "dbt"
LOGICAL_DATE = "2026-11-27T14:00:00+00:00"
SECRET = "airflow-alert-secret"


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


def _run(cmd: list[str], env: dict[str, str], timeout: int = 1800, check: bool = True):  # type: ignore[no-untyped-def]
    proc = subprocess.run(cmd, env=env, cwd=REPO_ROOT, text=True, capture_output=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, (
            f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Airflow home + SQLite DB (migrated once); no telemetry (no network beyond 127.0.0.1)."""
    venv = _airflow_venv()
    home = tmp_path_factory.mktemp("airflow")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "NBA_", "DBT_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
            "DO_NOT_TRACK": "1",
            # the first parse runs `dbt ls` (cosmos; cached after): on a loaded 2-core machine it takes
            # longer than Airflow's default 30 s import timeout
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "600",
            "NBA_REPO_ROOT": str(REPO_ROOT),
            "NBA_PYTHON": sys.executable,
            "NBA_AIRFLOW_RETRIES": "0",  # a failure in a test run must show at once, not after retries
        }
    )
    _run([str(venv / "bin" / "airflow"), "db", "migrate"], env)
    return env


def _paths(env: dict[str, str], root: Path) -> dict[str, str]:
    """Every NBA_* / dbt path of one run inside `root` (never the repo's warehouse)."""
    return env | {
        "NBA_RAW_DIR": str(root / "raw"),
        "NBA_TRUTH_DIR": str(root / "truth"),
        "NBA_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "NBA_OUTBOX_DIR": str(root / "outbox"),
        "NBA_REPORTS_DIR": str(root / "reports"),
        "NBA_CACHE_DIR": str(root / "cache"),
        "NBA_BI_DIR": str(root / "bi"),
        "DBT_TARGET_PATH": str(root / "dbt_target"),
        "DBT_LOG_PATH": str(root / "dbt_logs"),
    }


def _db(env: dict[str, str]) -> sqlite3.Connection:
    return sqlite3.connect(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))


def _last_run(env: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    with _db(env) as con:
        run_id, state = con.execute(
            "select run_id, state from dag_run where dag_id = 'nba_daily' order by id desc limit 1"
        ).fetchone()
        tasks = dict(
            con.execute(
                "select task_id, state from task_instance where dag_id = 'nba_daily' and run_id = ?",
                (run_id,),
            ).fetchall()
        )
    return run_id, state, tasks


def _xcom(env: dict[str, str], run_id: str, task_id: str) -> object:
    with _db(env) as con:
        row = con.execute(
            "select value from xcom where run_id = ? and task_id = ? and key = 'return_value'",
            (run_id, task_id),
        ).fetchone()
    assert row is not None, f"no XCom return_value from {task_id}"
    return json.loads(row[0])


_DAGBAG = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={folder!r})
dag = bag.dags.get("nba_daily")
tasks = dag.tasks if dag else []
print("RESULT " + json.dumps({{
    "import_errors": {{str(k): str(v) for k, v in bag.import_errors.items()}},
    "dag_ids": sorted(bag.dags),
    "edges": {{t.task_id: sorted(t.downstream_task_ids) for t in tasks}},
    "kinds": {{t.task_id: type(t).__name__ for t in tasks}},
    "python": {{t.task_id: getattr(t, "python", None) for t in tasks}},
    "dbt": {{t.task_id: str(getattr(t, "dbt_executable_path", "")) for t in tasks}},
    "callbacks": {{t.task_id: [getattr(c, "__name__", str(c)) for c in (t.on_failure_callback or [])]
                  if isinstance(t.on_failure_callback, list) else getattr(t.on_failure_callback, "__name__", None)
                  for t in tasks}},
    "params": {{k: dag.params.get_param(k).schema for k in dag.params}} if dag else {{}},
    "schedule": getattr(dag.timetable, "expression", None) or str(getattr(dag.timetable, "summary", "")),
    "max_active_tasks": dag.max_active_tasks if dag else None,
}}))
"""


def _result(stdout: str) -> dict:
    line = next(x for x in reversed(stdout.splitlines()) if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_dag_graph_params_and_environments(airflow_home: dict[str, str], tmp_path: Path) -> None:
    venv = _airflow_venv()
    env = _paths(airflow_home, tmp_path)
    got = _result(
        _run([str(venv / "bin" / "python"), "-c", _DAGBAG.format(folder=str(DAG_FOLDER))], env).stdout
    )
    assert got["import_errors"] == {}
    assert got["dag_ids"] == ["nba_daily"], "only airflow_dag.py may define DAGs (.airflowignore)"
    # the params offer exactly what the CLI validates (core.contracts), nothing else
    params = got["params"]
    assert params["mode"]["enum"] == list(run_modes()) == ["rules", "learned", "llm"]
    assert params["goal"]["enum"] == list(GOALS) == ["90d_clv", "engagement"]
    assert params["segment"]["enum"] == ["all", *SEGMENTS]
    assert params["decide_on"]["enum"] == ["local", "spark"]
    assert got["schedule"] == "0 14 * * *" and got["max_active_tasks"] == 1

    edges, kinds = got["edges"], got["kinds"]
    # one cosmos task per seed and model of the dbt project (whatever they are named today)
    models = {p.stem for p in (DBT_DIR / "models").rglob("*.sql")}
    seeds = {p.stem for p in (DBT_DIR / "seeds").glob("*.csv")}
    dbt_tasks = {t for t in edges if t.startswith("dbt.")}
    assert {f"dbt.{m}_run" for m in models} | {f"dbt.{s}_seed" for s in seeds} | {"dbt.dbt_test"} == dbt_tasks
    assert all(got["dbt"][t] == str(Path(sys.executable).parent / "dbt") for t in dbt_tasks)
    # the DAG's shape: prepare -> dbt roots ... -> dbt test -> activate -> evaluate
    assert edges["activate"] == ["evaluate"] and edges["evaluate"] == []
    assert edges["dbt.dbt_test"] == ["activate"]
    assert {t for t, down in edges.items() if "activate" in down} == {"dbt.dbt_test"}
    roots = set(edges["prepare_data"])
    assert roots and roots <= dbt_tasks and f"dbt.{sorted(seeds)[0]}_seed" in roots
    # the Python steps are TaskFlow external-python tasks in the project's interpreter
    for t in ("prepare_data", "activate", "evaluate"):
        assert "External" in kinds[t] and got["python"][t] == sys.executable, (t, kinds[t])
    assert all(got["callbacks"][t] in ("on_failure_alert", ["on_failure_alert"]) for t in edges), got[
        "callbacks"
    ]


def test_fallback_without_cosmos_keeps_the_shape(airflow_home: dict[str, str], tmp_path: Path) -> None:
    venv = _airflow_venv()
    env = _paths(airflow_home, tmp_path) | {"NBA_AIRFLOW_COSMOS": "0"}
    got = _result(
        _run([str(venv / "bin" / "python"), "-c", _DAGBAG.format(folder=str(DAG_FOLDER))], env).stdout
    )
    assert got["import_errors"] == {}
    assert got["edges"] == {
        "prepare_data": ["dbt.build"],
        "dbt.build": ["dbt.test"],
        "dbt.test": ["activate"],
        "activate": ["evaluate"],
        "evaluate": [],
    }
    assert all(got["python"][t] == sys.executable for t in got["edges"])


def test_a_value_the_cli_refuses_cannot_be_submitted(airflow_home: dict[str, str], tmp_path: Path) -> None:
    """The old DAG offered goal=conversion, which failed at activate after dbt had run."""
    airflow = str(_airflow_venv() / "bin" / "airflow")
    env = _paths(airflow_home, tmp_path)
    proc = _run(
        [airflow, "dags", "test", "nba_daily", LOGICAL_DATE, "--conf", '{"goal": "conversion"}'],
        env,
        check=False,
    )
    assert proc.returncode != 0
    assert "conversion" in proc.stdout + proc.stderr and "enum" in (proc.stdout + proc.stderr).lower()
    assert not (tmp_path / "raw").exists(), "nothing may run for a refused configuration"


def test_a_failing_run_fails_first_and_posts_a_signed_alert(
    airflow_home: dict[str, str], tmp_path: Path
) -> None:
    """A prompt version that does not exist: the project's settings model refuses it in prepare_data,
    before dbt builds anything; the task's failure callback posts a verified alert."""
    airflow = str(_airflow_venv() / "bin" / "airflow")
    with AlertReceiver(secret=SECRET) as receiver:
        env = _paths(airflow_home, tmp_path) | {
            "NBA_ALERTS__WEBHOOK_URL": receiver.alert_url,
            "NBA_ALERTS__SECRET": SECRET,
        }
        conf = {"prompt_version": "v999", "demo_customers": 500}
        proc = _run(
            [airflow, "dags", "test", "nba_daily", LOGICAL_DATE, "--conf", json.dumps(conf)], env, check=False
        )
    log = proc.stdout + proc.stderr
    _run_id, state, tasks = _last_run(env)
    assert state == "failed", (state, tasks, log[-3000:])
    assert tasks["prepare_data"] == "failed"
    assert tasks["activate"] == "upstream_failed" and tasks["evaluate"] == "upstream_failed"
    assert {s for t, s in tasks.items() if t.startswith("dbt.")} == {"upstream_failed"}
    assert not (tmp_path / "raw").exists() and not (tmp_path / "warehouse.duckdb").exists()
    assert receiver.rejected == [] and len(receiver.alerts) == 1, (receiver.alerts, receiver.rejected)
    alert = receiver.alerts[0]
    assert alert["dag_id"] == "nba_daily" and alert["task_id"] == "prepare_data"
    assert alert["logical_date"] == LOGICAL_DATE and alert["state"] == "failed"
    assert "NBA_PROMPT_VERSION" in alert["error"] and "v999" in alert["error"], alert["error"]
    assert SECRET not in json.dumps(alert) and SECRET not in log


def test_dags_test_runs_end_to_end_on_demo_data(airflow_home: dict[str, str], tmp_path: Path) -> None:
    airflow = str(_airflow_venv() / "bin" / "airflow")
    with AlertReceiver(secret=SECRET) as receiver:
        env = _paths(airflow_home, tmp_path) | {
            "NBA_ALERTS__WEBHOOK_URL": receiver.alert_url,
            "NBA_ALERTS__SECRET": SECRET,
        }
        conf = {"demo_customers": 2000, "eval_sample": 20, "segment": "all", "mode": "rules"}
        _run([airflow, "dags", "test", "nba_daily", LOGICAL_DATE, "--conf", json.dumps(conf)], env)
    assert receiver.alerts == [], "no alert for a run that succeeded"

    run_id, state, tasks = _last_run(env)
    assert state == "success" and set(tasks.values()) == {"success"}, tasks
    assert {"prepare_data", "activate", "evaluate", "dbt.dbt_test"} <= set(tasks) and len(tasks) > 20

    # The tasks ran the project against this test's paths (not the repo's warehouse).
    assert json.loads((tmp_path / "raw" / "_meta.json").read_text())["customers"] == 2000
    runs = [p for p in (tmp_path / "outbox").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert manifest["dry_run"] is True and manifest["mode"] == "rules"  # dry run by default
    assert manifest["as_of"] == LOGICAL_DATE, "as_of is the run's logical date"
    assert manifest["decisions"] > 0 and manifest["counts"]["send"] > 0, manifest
    # XCom: activate's return value is the run summary itself, as a dict
    summary = _xcom(env, run_id, "activate")
    assert isinstance(summary, dict) and summary["run_id"] == runs[0].name
    # the manifest is written with the outbox, before the plan is recorded, the metrics mart is
    # refreshed and the run's clock stops: those fields are the summary's alone
    later = {"elapsed_s", "plan", "plan_file", "plan_valid_until", "notes", "status"}
    assert summary["status"] == "completed"
    assert {k: v for k, v in summary.items() if k not in later} == {
        k: v for k, v in manifest.items() if k not in later
    }
    assert summary["plan_file"] and sum(summary["plan"]["webhook"].values()) == manifest["counts"]["send"]
    evaluated = _xcom(env, run_id, "evaluate")
    assert isinstance(evaluated, dict) and Path(evaluated["report"], "report.json").exists()
    assert evaluated["sample_size"] == 20 and "rules:revenue_90d" in evaluated["dr"], evaluated

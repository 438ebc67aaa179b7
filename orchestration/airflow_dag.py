"""`nba_daily`: the daily run as a dbt shop writes it under Airflow 3.

    prepare_data -> dbt (one task per seed/model, then dbt test; astronomer-cosmos) -> activate -> evaluate

- Every project task runs in the project's own virtualenv, never in Airflow's:
  `@task.external_python(python=<repo>/.venv/bin/python)` for the Python steps, and cosmos runs
  `<repo>/.venv/bin/dbt` as a subprocess for each dbt node (`dbt seed` / `dbt run --select <node>`),
  then one `dbt test` (data and unit tests) that gates `activate`.
- `prepare_data` first validates every setting of the later steps with the project's settings
  model, so a bad value fails the run in seconds, before dbt builds anything.
- `activate` runs the project's CLI (`activation.cli activate ... --output json`) inside that
  interpreter and returns its run summary (a dict) to XCom; a non-zero exit fails the task with the
  CLI's own one-line error. `evaluate` returns the eval report's headline (a dict) the same way.
- Params come from the lists the CLI validates (core.contracts): a value the CLI would refuse cannot
  be submitted. `as_of` is the run's logical date (scheduled 14:00 UTC, the CLI's default decision
  hour); the `as_of` param overrides it.
- `on_failure_callback` posts a signed alert when NBA_ALERTS__WEBHOOK_URL is set (orchestration/alerts.py).
- One task at a time by default (NBA_AIRFLOW_MAX_ACTIVE_TASKS=1): DuckDB and Spark's embedded Derby
  metastore each admit one writing process.

Where the project is: NBA_REPO_ROOT (default: this folder's parent), NBA_PYTHON (default
<repo>/.venv/bin/python), NBA_DBT (default: `dbt` beside NBA_PYTHON). The target comes from
NBA_DBT_TARGET (dev = DuckDB, spark); every other NBA_* variable reaches the project from the worker's
environment. Without astronomer-cosmos in Airflow's environment (or with NBA_AIRFLOW_COSMOS=0) the dbt
steps fall back to two external-python tasks (`dbt.build` without tests, then `dbt.test`) and the
DAG says so in its doc.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, TaskGroup, task

REPO_ROOT = Path(os.environ.get("NBA_REPO_ROOT") or Path(__file__).resolve().parent.parent).resolve()
PYTHON = os.environ.get("NBA_PYTHON") or str(REPO_ROOT / ".venv" / "bin" / "python")
DBT = os.environ.get("NBA_DBT") or str(Path(PYTHON).parent / "dbt")
DBT_DIR = REPO_ROOT / "warehouse" / "dbt"

# The settings, contracts and paths modules import nothing of the project and nothing Airflow lacks
# (pydantic and pydantic-settings, which Airflow 3 depends on): one source for the defaults and lists
# the CLI validates and for the paths.
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))
from core.config import bounds, choices_of, default  # noqa: E402
from core.policy_kinds import run_modes  # noqa: E402
from orchestration.alerts import alert_target, on_failure_alert  # noqa: E402
from warehouse import paths  # noqa: E402

alert_target()  # a half-configured alert webhook is a DAG import error, not a silent miss

DBT_TARGET = os.environ.get("NBA_DBT_TARGET", "dev")


def _number(name: str, description: str) -> Param:
    """A numeric run setting as a DAG parameter: its default and bounds from the settings model."""
    low, high = bounds(name)
    return Param(default(name), type="number", minimum=low, maximum=high, description=description)


def _dbt_env() -> dict[str, str]:
    """The paths dbt reads, absolute (cosmos runs dbt from a temporary copy of the project)."""
    env = {
        "NBA_RAW_DIR": str(paths.read_dir()),  # the mapped tables when NBA_SOURCES__MAPPING is set
        "NBA_DUCKDB_PATH": str(paths.duckdb_path()),
        "NBA_DBT_TARGET": DBT_TARGET,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    spark_dir = Path(os.environ.get("NBA_SPARK_DIR") or "warehouse/data/spark")
    env["NBA_SPARK_DIR"] = str(spark_dir if spark_dir.is_absolute() else REPO_ROOT / spark_dir)
    return env


default_args: dict[str, Any] = {
    "owner": "activation",
    "retries": int(os.environ.get("NBA_AIRFLOW_RETRIES", "2")),
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=3),
    "on_failure_callback": on_failure_alert,
}

# --- the Python steps: each function body runs in the project's interpreter (PYTHON) ----------------
# External-python functions are shipped as source: they import inside and use only their arguments.


def _prepare(customers: str, seed: str, activate_flags: dict, eval_flags: dict, env: dict) -> dict:
    import os
    from datetime import datetime

    from activation.settings import ActivateSettings
    from core.config import load_settings
    from evals.settings import EvalSettings
    from orchestration.steps import prepare
    from warehouse import generate

    # Every setting of the later steps is validated here, by the project's settings model: a bad
    # value fails the run in seconds with the CLI's one line, before dbt builds anything.
    os.environ.update({k: v for k, v in env.items() if v})
    settings = load_settings(ActivateSettings, **activate_flags)
    load_settings(EvalSettings, **eval_flags)
    day = (settings.as_of or datetime.fromisoformat(activate_flags["as_of"])).date()
    message = prepare(generate.GenerateConfig(seed=int(seed), customers=int(customers), as_of=day))
    print(message)
    return {
        "raw": message,
        "meta": generate.read_meta(),
        "as_of": settings.as_of.isoformat() if settings.as_of else None,
    }


def _activate(flags: dict, env: dict) -> dict:
    import contextlib
    import io
    import json
    import os

    from activation.cli import main

    os.environ.update({k: v for k, v in env.items() if v})
    argv = ["activate", *(f"--{k.replace('_', '-')}={v}" for k, v in flags.items() if k != "dry_run")]
    argv += [
        "--dry-run" if flags["dry_run"] in (True, "True", "true") else "--live",
        "--output=json",
        "--no-progress",
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    printed = out.getvalue()
    print(printed)
    if code != 0:
        meaning = {1: "failed run", 2: "bad input", 3: "partial", 4: "warehouse busy", 5: "promotion gate"}
        raise RuntimeError(f"activate exited {code} ({meaning.get(code, 'error')}); see the line above")
    return json.loads(printed)


def _evaluate(flags: dict, env: dict) -> dict:
    import contextlib
    import io
    import json
    import os
    from pathlib import Path

    from evals.cli import main

    os.environ.update({k: v for k, v in env.items() if v})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([f"--{k.replace('_', '-')}={v}" for k, v in flags.items()])
    printed = out.getvalue()
    print(printed)
    if code != 0:
        raise RuntimeError(f"evaluate exited {code}; see the line above")
    line = next(x for x in reversed(printed.splitlines()) if x.startswith("report: "))
    path = Path(line.removeprefix("report: ").strip())  # reports/eval-<id>/report.html
    path = path.parent if path.suffix else path
    report = json.loads((path / "report.json").read_text(encoding="utf-8"))
    dr = {
        f"{v['policy']}:{v['metric']}": v["value"] for v in report["policy_values"] if v["estimator"] == "dr"
    }
    keep = ("eval_id", "headline", "sample_size", "contactable")
    return {"report": str(path), **{k: report.get(k) for k in keep}, "dr": dr}


def _dbt_step(command: str) -> None:
    from orchestration.steps import main

    if main([command]) != 0:
        raise RuntimeError(f"orchestration.steps {command} failed; see the line above")


def _dbt_tasks() -> tuple[Any, Any, str]:
    """(first, last, how) of the dbt steps: per-node cosmos tasks, or the documented fallback."""
    try:
        if os.environ.get("NBA_AIRFLOW_COSMOS", "1") == "0":  # the fallback, on purpose
            raise ImportError("NBA_AIRFLOW_COSMOS=0")
        from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
        from cosmos.constants import InvocationMode, LoadMode, TestBehavior
    except ImportError:
        with TaskGroup("dbt") as group:
            build = task.external_python(python=PYTHON, task_id="build", expect_airflow=False)(_dbt_step)(
                "dbt-build"
            )
            test = task.external_python(python=PYTHON, task_id="test", expect_airflow=False)(_dbt_step)(
                "dbt-test"
            )
            build >> test
        return group, group, "fallback (astronomer-cosmos not installed): dbt build, then dbt test"
    env = _dbt_env()
    group = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(dbt_project_path=DBT_DIR, env_vars=env, partial_parse=True),
        profile_config=ProfileConfig(
            profile_name="nba_warehouse",
            target_name=DBT_TARGET,
            profiles_yml_filepath=DBT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(dbt_executable_path=DBT, invocation_mode=InvocationMode.SUBPROCESS),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS,  # cached by cosmos (an Airflow Variable) until the project changes
            dbt_executable_path=DBT,
            invocation_mode=InvocationMode.SUBPROCESS,
            # one `dbt run`/`dbt seed` task per node, then one `dbt test` (data + unit tests) gating activate
            test_behavior=TestBehavior.AFTER_ALL,
        ),
        operator_args={"install_deps": False, "append_env": True},
    )
    # Seeds parse afresh: cosmos hands every task the partial-parse file of the previous task's
    # temporary project copy, whose root path dbt-duckdb then uses for the seed CSV ("No files found
    # that match the pattern /tmp/tmp.../seeds/..."). Models do not read files: they keep the cache.
    for op in group.dag.tasks if group.dag else []:
        if op.task_id.startswith("dbt.") and type(op).__name__.startswith("DbtSeed"):
            op.partial_parse = False
    return group, group, "astronomer-cosmos: `dbt seed`/`dbt run --select <node>` per node, then `dbt test`"


with DAG(
    dag_id="nba_daily",
    description="Daily next-best-action run: dbt per model, guardrailed decisions, activation, eval",
    schedule="0 14 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=int(os.environ.get("NBA_AIRFLOW_MAX_ACTIVE_TASKS", "1")),
    default_args=default_args,
    tags=["activation", "dbt"],
    params={
        "segment": Param(
            default("segment"), type="string", enum=choices_of("segment"), description="segment to activate"
        ),
        "mode": Param(default("mode"), type="string", enum=list(run_modes()), description="policy"),
        "goal": Param(
            default("goal"), type="string", enum=choices_of("goal"), description="what the policy optimises"
        ),
        "discount_cap": _number("discount_cap", "max discount percent"),
        "suppress_hours": _number("suppress_hours", "no second contact within H hours"),
        # ActivateSettings' default (activation's settings import the destinations' SDKs, not here)
        "dry_run": Param(True, type="boolean", description="true: outbox only; false: send to destinations"),
        "prompt_version": Param(
            default("prompt_version"), type="string", description="agent/prompts/nba/<version> (LLM mode)"
        ),
        "as_of": Param("", type="string", description="decision time, ISO (empty: the run's logical date)"),
        "decide_on": Param(
            default("decide_on"),
            type="string",
            enum=choices_of("decide_on"),
            description="where rules/learned decide (spark: the cluster)",
        ),
        "eval_baseline": Param("random", type="string", description="rules, random or a prompt version"),
        "eval_sample": Param(40, type="integer", minimum=1, description="customers in the eval's sample"),
        "demo_customers": Param(
            5000, type="integer", minimum=1, description="demo data size if none is there"
        ),
        "demo_seed": Param(42, type="integer", minimum=0, description="demo data seed"),
    },
) as dag:
    ext = {"python": PYTHON, "expect_airflow": False, "multiple_outputs": False}  # one dict per task
    as_of = "{{ params.as_of or (logical_date or dag_run.run_after).isoformat() }}"
    # The CLI flags of the two project commands, rendered once and validated first (prepare_data).
    activate_flags = {
        "segment": "{{ params.segment }}",
        "mode": "{{ params.mode }}",
        "goal": "{{ params.goal }}",
        "discount_cap": "{{ params.discount_cap }}",
        "suppress_hours": "{{ params.suppress_hours }}",
        "prompt_version": "{{ params.prompt_version }}",
        "as_of": as_of,
        "dry_run": "{{ params.dry_run }}",
    }
    eval_flags = {
        "mode": "{{ params.mode }}",
        "prompt_version": "{{ params.prompt_version }}",
        "baseline": "{{ params.eval_baseline }}",
        "sample": "{{ params.eval_sample }}",
        "goal": "{{ params.goal }}",
        "discount_cap": "{{ params.discount_cap }}",
    }
    run_env = {"NBA_DECIDE_ON": "{{ params.decide_on }}"}  # a setting without a flag
    eval_env = {"NBA_AS_OF": as_of}  # the eval has no --as-of flag: its setting from the environment

    prepare_data = task.external_python(task_id="prepare_data", **ext)(_prepare)(
        customers="{{ params.demo_customers }}",
        seed="{{ params.demo_seed }}",
        activate_flags=activate_flags,
        eval_flags=eval_flags,
        env=run_env,
    )
    dbt_first, dbt_last, dbt_how = _dbt_tasks()
    activate = task.external_python(task_id="activate", **ext)(_activate)(flags=activate_flags, env=run_env)
    evaluate = task.external_python(task_id="evaluate", retries=0, **ext)(_evaluate)(
        flags=eval_flags, env=eval_env
    )
    prepare_data >> dbt_first
    dbt_last >> activate >> evaluate
    dag.doc_md = (__doc__ or "") + f"\n\ndbt steps: {dbt_how}.\n"

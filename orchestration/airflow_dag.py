"""Daily production run as an Airflow DAG: prepare data -> dbt build -> dbt test -> activate -> eval.

Every task shells out to the project's own commands in the project's own virtualenv, so Airflow and
the project never share an environment (Airflow's pins do not fight dbt's):

    prepare_data   python -m orchestration.steps prepare          (raw data; the demo generates it)
    dbt_build      python -m orchestration.steps dbt-build        (seeds, models, unit tests)
    dbt_test       python -m orchestration.steps dbt-test         (every data test)
    activate       python -m activation.cli activate --segment ... --dry-run|--live --output json
    evaluate       python -m evals.cli --mode ... --baseline ... --sample ...

Where the project is:
    NBA_REPO_ROOT  repo root (default: the parent of this file's folder)
    NBA_PYTHON     the project's interpreter (default: <NBA_REPO_ROOT>/.venv/bin/python)
Every other NBA_* variable (NBA_RAW_DIR, NBA_DUCKDB_PATH, NBA_OUTBOX_DIR, NBA_REPORTS_DIR,
NBA_DBT_TARGET, destination settings, OPENAI_* ...) is read by the project from the worker's
environment, which the tasks inherit.

Trigger with params, e.g. `airflow dags trigger nba_daily -c '{"segment": "churn_rescue_nps",
"dry_run": false}'`, or in the UI form. `dry_run` defaults to true: going live is a deliberate act.
"""

from __future__ import annotations

import os
import shlex
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

REPO_ROOT = Path(os.environ.get("NBA_REPO_ROOT") or Path(__file__).resolve().parent.parent)
PYTHON = os.environ.get("NBA_PYTHON") or str(REPO_ROOT / ".venv" / "bin" / "python")
PY = shlex.quote(PYTHON)

SEGMENTS = ["all", "high_value_lapse_risk", "new_users_first_week_intent", "churn_rescue_nps"]
GOALS = ["90d_clv", "conversion"]

default_args = {
    "owner": "activation",
    "retries": int(os.environ.get("NBA_AIRFLOW_RETRIES", "2")),
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=3),
}

with DAG(
    dag_id="nba_daily",
    description="Daily next-best-action run: warehouse build and tests, guardrailed decisions, activation, eval",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["activation", "dbt"],
    render_template_as_native_obj=False,
    params={
        "segment": Param("all", type="string", enum=SEGMENTS, description="segment to activate"),
        "mode": Param("rules", type="string", enum=["rules", "llm"], description="policy"),
        "goal": Param("90d_clv", type="string", enum=GOALS, description="what the policy optimises"),
        "discount_cap": Param(5, type="number", minimum=0, maximum=100, description="max discount percent"),
        "suppress_hours": Param(24, type="number", minimum=0, description="no second contact within H hours"),
        "dry_run": Param(True, type="boolean", description="true: outbox only; false: send to destinations"),
        "prompt_version": Param("v1", type="string", description="prompts/nba/<version> (LLM mode)"),
        "as_of": Param("", type="string", description="decision time (empty: the data's as_of, 14:00 UTC)"),
        "eval_baseline": Param(
            "random", type="string", description="eval baseline: rules, random or a prompt version"
        ),
        "eval_sample": Param(
            40, type="integer", minimum=1, description="customers in the eval's frozen sample"
        ),
        "demo_customers": Param(
            5000, type="integer", minimum=1, description="demo data size if none is there"
        ),
        "demo_seed": Param(42, type="integer", minimum=0, description="demo data seed"),
    },
) as dag:
    common = {"cwd": str(REPO_ROOT), "append_env": True}

    prepare_data = BashOperator(
        task_id="prepare_data",
        bash_command=(
            f"{PY} -m orchestration.steps prepare"
            " --customers {{ params.demo_customers }} --seed {{ params.demo_seed }}"
        ),
        **common,
    )
    dbt_build = BashOperator(
        task_id="dbt_build", bash_command=f"{PY} -m orchestration.steps dbt-build", **common
    )
    dbt_test = BashOperator(
        task_id="dbt_test", bash_command=f"{PY} -m orchestration.steps dbt-test", **common
    )
    activate = BashOperator(
        task_id="activate",
        bash_command=(
            f"{PY} -m activation.cli activate"
            " --segment {{ params.segment }} --mode {{ params.mode }} --goal {{ params.goal }}"
            " --discount-cap {{ params.discount_cap }} --suppress-hours {{ params.suppress_hours }}"
            " --prompt-version {{ params.prompt_version }}"
            " {{ '--dry-run' if params.dry_run else '--live' }}"
            "{% if params.as_of %} --as-of {{ params.as_of }}{% endif %}"
            " --output json --no-progress"
        ),
        **common,
    )
    evaluate = BashOperator(
        task_id="evaluate",
        bash_command=(
            f"{PY} -m evals.cli"
            " --mode {{ params.mode }} --prompt-version {{ params.prompt_version }}"
            " --baseline {{ params.eval_baseline }} --sample {{ params.eval_sample }}"
            " --goal {{ params.goal }} --discount-cap {{ params.discount_cap }}"
        ),
        retries=0,  # a deterministic offline eval does not get better by retrying
        **common,
    )

    prepare_data >> dbt_build >> dbt_test >> activate >> evaluate

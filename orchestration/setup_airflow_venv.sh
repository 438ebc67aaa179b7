#!/usr/bin/env bash
# Create the Airflow virtualenv the DAG runs in, apart from the project's .venv so that Airflow's
# pins never touch dbt's: Apache Airflow and astronomer-cosmos (which runs the project's own
# .venv/bin/dbt as a subprocess, so it needs no dbt here). Idempotent: does nothing when the wanted
# versions are there.
#   orchestration/setup_airflow_venv.sh [VENV_DIR]   (default: $NBA_AIRFLOW_VENV or .venv-airflow)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-${NBA_AIRFLOW_VENV:-.venv-airflow}}"
PYTHON="${PYTHON:-python3}"
AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
COSMOS_SPEC="${COSMOS_SPEC:-astronomer-cosmos>=1.15,<2}"
have() { "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true; }
if [ -x "$VENV/bin/airflow" ] && [ "$(have apache-airflow)" = "$AIRFLOW_VERSION" ] && [ -n "$(have astronomer-cosmos)" ]; then
  echo "[setup] $VENV has apache-airflow $AIRFLOW_VERSION and astronomer-cosmos $(have astronomer-cosmos)"
  exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
echo "[setup] installing apache-airflow $AIRFLOW_VERSION and $COSMOS_SPEC into $VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "apache-airflow==$AIRFLOW_VERSION" "$COSMOS_SPEC"
"$VENV/bin/python" -m pip check

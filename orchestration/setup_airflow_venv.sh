#!/usr/bin/env bash
# Create the Airflow virtualenv the DAG tests run against, apart from the project's .venv so that
# Airflow's pins never touch dbt's. Idempotent: does nothing if the wanted version is there.
#   orchestration/setup_airflow_venv.sh [VENV_DIR]   (default: $NBA_AIRFLOW_VENV or .venv-airflow)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-${NBA_AIRFLOW_VENV:-.venv-airflow}}"
PYTHON="${PYTHON:-python3}"
AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
if [ -x "$VENV/bin/airflow" ] && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))' 2>/dev/null)" = "$AIRFLOW_VERSION" ]; then
  echo "[setup] $VENV has apache-airflow $AIRFLOW_VERSION"
  exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
echo "[setup] installing apache-airflow $AIRFLOW_VERSION into $VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "apache-airflow==$AIRFLOW_VERSION"

# Warehouse-native customer activation with guardrailed LLM decisioning.
# `make help` lists every target. The first target that needs Python creates .venv and installs into it.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DBT := $(VENV)/bin/dbt
STAMP := $(VENV)/.installed

# --- parameters (override on the command line: make activate MODE=rules SEGMENT=churn_rescue_nps) ---
SEGMENT ?= all
DRY_RUN ?= 1
MODE ?= rules
GOAL ?= 90d_clv
DISCOUNT_CAP ?= 5
SUPPRESS_HOURS ?= 24
PROMPT_VERSION ?= v1
AS_OF ?=
OUTPUT ?= table
CUSTOMERS ?= 5000
SEED ?= 42
DATA_AS_OF ?= 2026-11-27
BASELINE ?= rules
SAMPLE ?= all
FORCE ?= 0
LIMIT ?=

# `make eval` compares the LLM (embedded model unless OPENAI_*) against BASELINE unless MODE is given.
EVAL_MODE := $(if $(filter command line environment,$(origin MODE)),$(MODE),llm)

AIRFLOW_VENV := .venv-airflow
SPARK_VENV := .venv-spark
SPARK_STAMP := $(SPARK_VENV)/.installed

DBT_ARGS := --project-dir warehouse/dbt --profiles-dir warehouse/dbt

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "[setup] installing the project into $(VENV) (first run only)"
	@$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

.PHONY: help
help: ## List every target with one line each
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Parameters: SEGMENT=$(SEGMENT) DRY_RUN=$(DRY_RUN) MODE=$(MODE) GOAL=$(GOAL) DISCOUNT_CAP=$(DISCOUNT_CAP)"
	@echo "            SUPPRESS_HOURS=$(SUPPRESS_HOURS) PROMPT_VERSION=$(PROMPT_VERSION) CUSTOMERS=$(CUSTOMERS) SEED=$(SEED)"

.PHONY: install
install: $(STAMP) ## Create .venv and install the project with its dev tools

.PHONY: seed
seed: $(STAMP) ## Generate synthetic raw data (CUSTOMERS, SEED, DATA_AS_OF) and load the dbt seeds
	$(PY) -m warehouse.cli generate --seed $(SEED) --customers $(CUSTOMERS) --as-of $(DATA_AS_OF)
	$(PY) -m warehouse.cli seed

.PHONY: build
build: $(STAMP) ## dbt build into a new file, swapped in only if every test passes (generates data if missing)
	$(PY) -m warehouse.cli build

.PHONY: test
test: $(STAMP) ## Run the test suite (offline: recorded cassettes, local servers, no API key)
	$(PY) -m pytest -q

.PHONY: test-live
test-live: $(STAMP) ## Drive the real embedded model end to end for a handful of customers
	$(PY) -m pytest -q -m live tests/live

$(SPARK_STAMP): pyproject.toml
	@test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	@echo "[setup] installing the project + spark extra into $(SPARK_VENV) (first run only)"
	@$(SPARK_VENV)/bin/python -m pip install --quiet --upgrade pip wheel setuptools
	@$(SPARK_VENV)/bin/python -m pip install --quiet -e '.[dev,spark]'
	@touch $(SPARK_STAMP)

.PHONY: test-airflow
test-airflow: $(STAMP) ## Run the nba_daily DAG under real Airflow 3.3.2 (own venv .venv-airflow, SQLite, temp dir)
	NBA_AIRFLOW_VENV=$(AIRFLOW_VENV) orchestration/setup_airflow_venv.sh
	NBA_AIRFLOW_VENV=$(AIRFLOW_VENV) $(PY) -m pytest -q -m airflow tests/production/test_airflow.py

.PHONY: test-spark
test-spark: $(SPARK_STAMP) ## dbt build on Spark local mode (.venv-spark, Java 17); decisions must equal DuckDB's
	$(SPARK_VENV)/bin/python -m pytest -q -m spark --timeout 1200 tests/production/test_spark.py

.PHONY: build-spark
build-spark: $(SPARK_STAMP) ## dbt build on Apache Spark in local mode (state under NBA_SPARK_DIR)
	NBA_DBT_TARGET=spark $(SPARK_VENV)/bin/python -m warehouse.cli build

.PHONY: simulate-outcomes
simulate-outcomes: $(STAMP) ## Draw synthetic outcomes for the latest run from the generator's truth (feeds the lift mart)
	$(PY) -m activation.cli simulate-outcomes

.PHONY: test-dbt
test-dbt: $(STAMP) ## Only the warehouse tests (generator, dbt build, corruption, BI export)
	$(PY) -m pytest -q tests/warehouse

.PHONY: docs
docs: $(STAMP) ## Generate dbt docs (catalog and lineage)
	$(PY) -m warehouse.cli docs

.PHONY: serve-docs
serve-docs: $(STAMP) ## Serve dbt docs on http://localhost:8080 (generated first only if stale)
	$(PY) -m warehouse.cli serve-docs --port 8080

.PHONY: bi
bi: $(STAMP) ## Export dim_customer, customer 360 and segment scores to bi/ (no personal columns unless BI_INCLUDE_PII=1)
	$(PY) -m warehouse.cli bi $(if $(filter 1,$(BI_INCLUDE_PII)),--include-pii)

.PHONY: activate
activate: $(STAMP) ## Decide and activate: SEGMENT DRY_RUN MODE GOAL DISCOUNT_CAP SUPPRESS_HOURS PROMPT_VERSION
	$(PY) -m activation.cli --segment $(SEGMENT) --dry-run $(DRY_RUN) --mode $(MODE) --goal $(GOAL) \
		--discount-cap $(DISCOUNT_CAP) --suppress-hours $(SUPPRESS_HOURS) --prompt-version $(PROMPT_VERSION) \
		--output $(OUTPUT) $(if $(AS_OF),--as-of $(AS_OF)) $(if $(filter 1,$(FORCE)),--force) \
		$(if $(LIMIT),--sample $(LIMIT))

.PHONY: replay-dlq
replay-dlq: $(STAMP) ## Re-send what the dead-letter queue holds
	$(PY) -m activation.cli replay-dlq

.PHONY: destinations-up
destinations-up: $(STAMP) ## Run local HubSpot, Salesforce (TLS) and webhook servers on 127.0.0.1 for a live demo
	$(PY) -m activation.local_servers all

.PHONY: prompt
prompt: $(STAMP) ## Show the rendered context and prompt for CUSTOMER_ID (PROMPT_VERSION)
	$(PY) -m agent.cli prompt --customer-id $(CUSTOMER_ID) --prompt-version $(PROMPT_VERSION) --goal $(GOAL) \
		--discount-cap $(DISCOUNT_CAP)

.PHONY: llm-serve
llm-serve: $(STAMP) ## Serve the embedded model (SmolLM2-135M) standalone on 127.0.0.1:8081 for prompt work
	$(PY) -m agent.cli llm-serve --port 8081

.PHONY: record-cassettes
record-cassettes: $(STAMP) ## Re-record the LLM cassettes against a real model server (embedded unless OPENAI_BASE_URL)
	NBA_RECORD=1 $(PY) -m pytest -q tests/agent -k cassette -p no:randomly

.PHONY: eval
eval: $(STAMP) ## Offline eval: MODE (default llm) PROMPT_VERSION vs BASELINE on SAMPLE customers; report in reports/
	$(PY) -m evals.cli --mode $(EVAL_MODE) --prompt-version $(PROMPT_VERSION) --baseline $(BASELINE) --sample $(SAMPLE) \
		--goal $(GOAL) --discount-cap $(DISCOUNT_CAP)

.PHONY: bench
bench: $(STAMP) ## Run every benchmark under bench/ and print the ratios
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

.PHONY: lint
lint: $(STAMP) ## ruff check + ruff format --check
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

.PHONY: format
format: $(STAMP) ## ruff format
	$(VENV)/bin/ruff format .

.PHONY: typecheck
typecheck: $(STAMP) ## mypy over the Python packages
	$(VENV)/bin/mypy

.PHONY: clean
clean: ## Remove generated data, the warehouse file, outbox, reports and caches (keeps .venv)
	rm -rf warehouse/data warehouse/dbt/target warehouse/dbt/logs warehouse/dbt/*.duckdb warehouse/dbt/.*-build warehouse/dbt/.*.lock outbox bi reports .cache

# Warehouse-native customer activation with guardrailed LLM decisioning.
# `make help` lists every target. The first target that needs Python creates .venv and installs into it.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DBT := $(VENV)/bin/dbt
STAMP := $(VENV)/.installed

# --- parameters -------------------------------------------------------------------------------
# Run parameters reach a command only when given on make's command line (`make activate MODE=llm`),
# as the command's NBA_* variable: an unrelated shell variable of the same name (OUTPUT, MODE, ...)
# cannot change a run. Their defaults and validation live in the settings model (core/config.py),
# the one owner of every setting; `make help` lists them. Data generation has its own defaults here.
PLAN_PARAMS := SEGMENT MODE GOAL DISCOUNT_CAP SUPPRESS_HOURS PROMPT_VERSION AS_OF GLOBAL_HOLDOUT_PCT \
	SEGMENT_HOLDOUT_PCT LIMIT OUTPUT
RUN_PARAMS := $(PLAN_PARAMS) DRY_RUN FORCE
EVAL_PARAMS := MODE GOAL DISCOUNT_CAP PROMPT_VERSION BASELINE SAMPLE AS_OF OUTPUT FAIL_IF_WORSE
nba_env = $(foreach v,$(1),$(if $(filter command line,$(origin $(v))),NBA_$(v)='$($(v))'))
# a command-line-only make variable as a flag: $(call flag,PLAN,--plan) -> --plan '<value>'
flag = $(if $(filter command line,$(origin $(1))),$(2) '$($(1))')
CUSTOMERS ?= 5000
SEED ?= 42
DATA_AS_OF ?= 2026-11-27

AIRFLOW_VENV := .venv-airflow
SPARK_VENV := .venv-spark
SPARK_STAMP := $(SPARK_VENV)/.installed

DBT_ARGS := --project-dir warehouse/dbt --profiles-dir warehouse/dbt

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "[setup] installing the project into $(VENV) (first run only)" >&2
	@$(PY) -m pip install --quiet --upgrade pip wheel setuptools >&2
	@# setuptools prints an information block ("Editable installation ... folders in your working
	@# directory with the same name as your package") for every editable install of a flat layout
	@# like this one: that is the point of it here, so it is filtered (a message filter, no category).
	@PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet -e '.[dev]' >&2
	@touch $(STAMP)

.PHONY: help
help: ## List every target and every parameter
	@if [ -t 1 ]; then c='\033[36m'; r='\033[0m'; else c=''; r=''; fi; \
	awk -v c="$$c" -v r="$$r" 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  %s%-18s%s %s\n", c, $$1, r, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Parameters, given on make's command line only (make plan MODE=llm); [default]:"
	@echo "  plan, activate (and eval, prompt where they apply):"
	@echo "    SEGMENT=[all]|high_value_lapse_risk|new_users_first_week_intent|churn_rescue_nps"
	@echo "    MODE=[rules]|learned|llm  GOAL=[90d_clv]|engagement  DISCOUNT_CAP=[5] (0-100)"
	@echo "    SUPPRESS_HOURS=[24] (0-8760)  AS_OF=[data date, 14:00 UTC]  LIMIT=[all] (first N)"
	@echo "    PROMPT_VERSION=[v1]  GLOBAL_HOLDOUT_PCT=[5]  SEGMENT_HOLDOUT_PCT=[10]  OUTPUT=[table]|json"
	@echo "  activate: DRY_RUN=[1]|0  FORCE=[0]|1 (past the circuit breaker and promotion gate)"
	@echo "  apply: PLAN=<run id of a plan> (required)  FORCE=[0]|1  OUTPUT=[table]|json"
	@echo "  explain: CUSTOMER_ID=<id> (required)  RUN_ID=[latest]  PROMPT=[0]|1  OUTPUT=[table]|json"
	@echo "  runs: LAST=[10]  OUTPUT=[table]|json     status: OUTPUT=[table]|json"
	@echo "  eval: MODE=[llm]  BASELINE=[rules]|random|learned|<prompt version>  SAMPLE=[all]|N"
	@echo "        FAIL_IF_WORSE=[0]|1 (exit 1 unless the candidate is shown at least as good)  OUTPUT=[table]|json"
	@echo "  llm-batch-export: the plan's (MODE=llm) + OUT=<path>   llm-batch-run, llm-batch-submit: FILE= OUT="
	@echo "  llm-batch-import: the plan's (as exported) + FILE=<output file>  SKIP_UNKNOWN=[0]|1"
	@echo "  prompt: CUSTOMER_ID=<id>     simulate-days: DAYS=[10] SEEDS=[0] (comma-separated) CANDIDATE=[learned]|degraded"
	@echo "  replay-dlq: OUTPUT=[table]|json     bi: BI_INCLUDE_PII=[0]|1 (personal columns in bi/)"
	@echo "  data: CUSTOMERS=[5000]  SEED=[42]  DATA_AS_OF=[2026-11-27]"
	@echo "  build: OVERWRITE=[0]|1 (a file at NBA_DUCKDB_PATH that is not our warehouse is moved aside first;"
	@echo "         NBA_WAREHOUSE__OVERWRITE=1 does the same for plan and activate)"
	@echo "Everything else is an NBA_* environment variable (README): destinations, NBA_PLAN__MAX_AGE_MINUTES,"
	@echo "NBA_ALERTS__WEBHOOK_URL / NBA_ALERTS__SECRET, NBA_LLM__*, NBA_DELIVERY__*."

.PHONY: install
install: $(STAMP) ## Create .venv and install the project with its dev tools

.PHONY: seed
seed: $(STAMP) ## Generate synthetic raw data (CUSTOMERS, SEED, DATA_AS_OF) and load the dbt seeds
	$(PY) -m warehouse.cli generate --seed $(SEED) --customers $(CUSTOMERS) --as-of $(DATA_AS_OF)
	$(PY) -m warehouse.cli seed

.PHONY: build
build: $(STAMP) ## dbt build into a new file, swapped in only if every test passes (generates data if missing)
	$(PY) -m warehouse.cli build $(if $(filter 1,$(OVERWRITE)),--overwrite)

.PHONY: test
test: $(STAMP) ## Run the test suite (offline: recorded cassettes, local servers, no API key)
	$(PY) -m pytest -q

.PHONY: test-live
test-live: $(STAMP) ## Drive the real embedded model (llama-server, built on first use) end to end
	$(PY) -m agent.cli llm-prepare
	$(PY) -m pytest -q -m live tests/live

$(SPARK_STAMP): pyproject.toml
	@test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	@echo "[setup] installing the project + spark extra into $(SPARK_VENV) (first run only)"
	@$(SPARK_VENV)/bin/python -m pip install --quiet --upgrade pip wheel setuptools
	@PYTHONWARNINGS="ignore:Editable installation" $(SPARK_VENV)/bin/python -m pip install --quiet -e '.[dev,spark]'
	@touch $(SPARK_STAMP)

.PHONY: test-airflow
test-airflow: $(STAMP) ## Run the nba_daily DAG under real Airflow 3.3.2 + cosmos (own venv .venv-airflow, SQLite, temp dir)
	NBA_AIRFLOW_VENV=$(AIRFLOW_VENV) orchestration/setup_airflow_venv.sh
	NBA_AIRFLOW_VENV=$(AIRFLOW_VENV) $(PY) -m pytest -q -m airflow --timeout 2400 tests/production/test_airflow.py

.PHONY: test-spark
test-spark: $(SPARK_STAMP) ## dbt build on Spark local mode (.venv-spark, Java 17); Spark-made decisions must equal one process's
	$(SPARK_VENV)/bin/python -m pytest -q -m spark --timeout 1200 tests/production/test_spark.py

.PHONY: build-spark
build-spark: $(SPARK_STAMP) ## dbt build on Apache Spark in local mode (state under NBA_SPARK_DIR)
	NBA_DBT_TARGET=spark $(SPARK_VENV)/bin/python -m warehouse.cli build

.PHONY: simulate-outcomes
simulate-outcomes: $(STAMP) ## Draw synthetic outcomes for the latest run from the generator's truth (feeds the lift mart)
	@$(PY) -m activation.cli simulate-outcomes

.PHONY: simulate-days
simulate-days: $(STAMP) ## DAYS daily cycles on a copy of the demo world: CANDIDATE ramps against rules, outcomes drawn, it retrains, the gate decides (SEEDS=0,1,2)
	@$(PY) -m evals.simulate_days --days $(or $(DAYS),10) $(if $(filter command line,$(origin GOAL)),--goal '$(GOAL)') \
		$(call flag,SEEDS,--seeds) $(call flag,CANDIDATE,--candidate)

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

.PHONY: plan
plan: $(STAMP) ## Decide and write the plan, sending nothing: outbox/<run_id>/ (plan.txt per customer)
	@$(call nba_env,$(PLAN_PARAMS)) $(PY) -m activation.cli plan

.PHONY: apply
apply: $(STAMP) ## Send exactly plan PLAN=<run_id> to NBA_DESTINATIONS (refused if stale or outdated)
	@$(call nba_env,FORCE OUTPUT) $(PY) -m activation.cli apply $(call flag,PLAN,--plan)

.PHONY: activate
activate: $(STAMP) ## Decide and activate in one go (DRY_RUN=1 by default: the same as make plan)
	@$(call nba_env,$(RUN_PARAMS)) $(PY) -m activation.cli activate

.PHONY: explain
explain: $(STAMP) ## Explain CUSTOMER_ID's decision: segment, eligibility, proposal, guardrails, deliveries
	@$(call nba_env,OUTPUT PROMPT_VERSION) $(PY) -m activation.cli explain $(call flag,CUSTOMER_ID,--customer-id) \
		$(call flag,RUN_ID,--run-id) $(if $(filter command line,$(origin PROMPT)),$(if $(filter 1,$(PROMPT)),--prompt))

.PHONY: runs
runs: $(STAMP) ## The last LAST=10 runs: kind, status, sends, rows delivered and not, duration
	@$(call nba_env,OUTPUT) $(PY) -m activation.cli runs $(call flag,LAST,--last)

.PHONY: status
status: $(STAMP) ## The latest run, what is owed to each destination, the plan waiting to be applied
	@$(call nba_env,OUTPUT) $(PY) -m activation.cli status

.PHONY: replay-dlq
replay-dlq: $(STAMP) ## Re-send every row still owed (pending, failed) and the dead-letter queue
	@$(call nba_env,OUTPUT) $(PY) -m activation.cli replay-dlq

.PHONY: destinations-up
destinations-up: $(STAMP) ## Run local HubSpot, Salesforce (TLS) and webhook servers on 127.0.0.1 for a live demo
	$(PY) -m testing.local_servers all

.PHONY: prompt
prompt: $(STAMP) ## Show the rendered context and prompt for CUSTOMER_ID (PROMPT_VERSION)
	@$(call nba_env,GOAL DISCOUNT_CAP PROMPT_VERSION AS_OF) $(PY) -m agent.cli prompt \
		$(if $(filter command line,$(origin CUSTOMER_ID)),--customer-id '$(CUSTOMER_ID)')

.PHONY: llm-serve
llm-serve: $(STAMP) ## Serve the embedded model (SmolLM2-135M on llama-server) on 127.0.0.1:8081 for prompt work
	$(PY) -m agent.cli llm-serve --port 8081

# The plan's parameters (as make plan reads them; MODE is llm) select the requests a batch file holds.
BATCH_PARAMS := SEGMENT MODE GOAL DISCOUNT_CAP SUPPRESS_HOURS PROMPT_VERSION AS_OF GLOBAL_HOLDOUT_PCT \
	SEGMENT_HOLDOUT_PCT LIMIT

.PHONY: llm-batch-export
llm-batch-export: $(STAMP) ## Write the plan's distinct LLM requests not yet cached as an OpenAI Batch API file OUT=
	@$(call nba_env,$(BATCH_PARAMS)) $(PY) -m agent.batch_cli export $(call flag,OUT,--out)

.PHONY: llm-batch-run
llm-batch-run: $(STAMP) ## Answer Batch API file FILE= with the embedded model (or OPENAI_BASE_URL) into OUT=, resumably
	@$(PY) -m agent.batch_cli run $(call flag,FILE,--file) $(call flag,OUT,--out)

.PHONY: llm-batch-submit
llm-batch-submit: $(STAMP) ## Run Batch API file FILE= on the endpoint's Batch API (OPENAI_*); answers to OUT=
	@$(PY) -m agent.batch_cli submit $(call flag,FILE,--file) $(call flag,OUT,--out)

.PHONY: llm-batch-import
llm-batch-import: $(STAMP) ## Store Batch API answers FILE= in the decision cache (the plan's parameters, as exported)
	@$(call nba_env,$(BATCH_PARAMS)) $(PY) -m agent.batch_cli import $(call flag,FILE,--file) \
		$(if $(filter 1,$(SKIP_UNKNOWN)),--skip-unknown)

.PHONY: record-cassettes
record-cassettes: $(STAMP) ## Re-record the LLM cassettes against a real model server (embedded unless OPENAI_BASE_URL)
	$(if $(OPENAI_BASE_URL),,$(PY) -m agent.cli llm-prepare)
	NBA_RECORD=1 $(PY) -m pytest -q tests/agent -k cassette -p no:randomly

.PHONY: eval
eval: $(STAMP) ## Offline eval: MODE (default llm) PROMPT_VERSION vs BASELINE on SAMPLE customers; report in reports/
	@$(call nba_env,$(EVAL_PARAMS)) $(PY) -m evals.cli

.PHONY: bench
bench: $(STAMP) ## Run every benchmark under bench/ and print the ratios
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

.PHONY: lint
lint: $(STAMP) ## ruff check + ruff format --check + the import layers (lint-imports)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

.PHONY: format
format: $(STAMP) ## ruff format
	$(VENV)/bin/ruff format .

.PHONY: typecheck
typecheck: $(STAMP) ## mypy over the Python packages
	$(VENV)/bin/mypy

.PHONY: clean
clean: ## Remove generated data, the warehouse file, outbox, reports and caches (keeps .venv)
	rm -rf warehouse/data warehouse/dbt/target warehouse/dbt/logs warehouse/dbt/*.duckdb warehouse/dbt/.*-build warehouse/dbt/.*.lock outbox bi reports .cache

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
# A value given to make reaches the program as data, never as shell text: no recipe writes a user's
# value into its command line. A parameter reaches the program as its NBA_* variable and a flag's
# value as an argument, both through "$$NAME", a quoted reference to the variable in the recipe's
# environment, which the shell expands once and never reads as code (quotes, ;, $$(...), backticks
# and newlines arrive as typed). Make itself expands nothing inside a value: command-line values are
# made simple (not recursively expanded) variables before anything reads them.
#
# Where a parameter comes from: make's command line (`make activate MODE=llm`) or, for those the
# origin README documents, the environment as well (`DISCOUNT_CAP=10 make activate`). The command
# line wins when both are given. Any other parameter found in the environment is ignored, and the
# run says so: an unrelated shell variable (OUTPUT, LIMIT, ...) cannot change a run, and a
# documented one cannot change it silently (the run's first line, on stderr, names each).
# Defaults and validation live in the settings model (core/config.py), the one owner of every
# setting; `make help` lists them.
FROM_ENVIRONMENT := SEGMENT DRY_RUN GOAL DISCOUNT_CAP SUPPRESS_HOURS MODE
COMMAND_LINE := $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))
# make exports command-line variables to every recipe and expands them on the way: as given instead
$(foreach v,$(COMMAND_LINE),$(eval override $(v) := $$(value $(v))))
export $(COMMAND_LINE)
# $(call taken,P): P if its value counts (command line; environment for FROM_ENVIRONMENT)
taken = $(or $(filter $(1),$(COMMAND_LINE)),$(if $(filter environment,$(origin $(1))),$(filter $(1),$(FROM_ENVIRONMENT))))
env_taken = $(foreach v,$(1),$(if $(filter environment,$(origin $(v))),$(filter $(v),$(FROM_ENVIRONMENT))))
env_ignored = $(foreach v,$(1),$(if $(filter environment,$(origin $(v))),$(filter-out $(FROM_ENVIRONMENT),$(v))))
# $(call nba_env,PARAMS): NBA_P="$$P" for each parameter P taken (an assignment prefix of the command)
nba_env = $(foreach v,$(1),$(if $(call taken,$(v)),NBA_$(v)="$$$(v)"))
# $(call flag,P,--flag): --flag "$$P" when P is taken
flag = $(if $(call taken,$(1)),$(2) "$$$(1)")
# $(call switch,P,--flag): --flag for P=1, nothing for P=0; any other value is refused, naming P=
switch = $(if $(call taken,$(1)),$(if $(call is,$(1),1),$(2),$(if $(call is,$(1),0),,$(error \
	$(1)=: must be 1 or 0 (got '$(subst $(newline),\n,$(value $(1)))')))))
# $(call is,P,TEXT): non-empty when P's value is exactly TEXT
is = $(and $(findstring $(2),$(value $(1))),$(findstring $(value $(1)),$(2)))
define newline


endef
# $(call env_other,PARAMS): the parameters that count from the environment found there but not in PARAMS
env_other = $(foreach v,$(filter-out $(1),$(FROM_ENVIRONMENT)),$(if $(filter environment,$(origin $(v))),$(v)))
# $(call announce,PARAMS): the run's first line (stderr) when any of them is in the environment, or
# any parameter that counts from the environment is there and the target does not take it
announce = $(call announce_,$(strip $(call env_taken,$(1))),$(strip $(call env_ignored,$(1))),$(strip \
	$(call env_other,$(1))))
announce_ = $(if $(1)$(2)$(3),{ printf 'make $(@F):'; \
	$(if $(1),printf ' %s' 'from the environment:'; printf ' %s=%q' $(foreach v,$(1),$(v) "$$$(v)"); \
		printf '%s' " (make's command line wins)";) \
	$(if $(2),printf '%s' "$(if $(1),;) ignored from the environment (they count on make's command line only): $(2)";) \
	$(if $(3),printf '%s' "$(if $(1)$(2),;) ignored from the environment (not parameters of make $(@F)): $(3)";) \
	echo; } >&2;)
PLAN_PARAMS := SEGMENT MODE GOAL DISCOUNT_CAP SUPPRESS_HOURS PROMPT_VERSION AS_OF GLOBAL_HOLDOUT_PCT \
	SEGMENT_HOLDOUT_PCT LIMIT OUTPUT
RUN_PARAMS := $(PLAN_PARAMS) DRY_RUN FORCE
EVAL_PARAMS := MODE GOAL DISCOUNT_CAP PROMPT_VERSION BASELINE SAMPLE AS_OF OUTPUT FAIL_IF_WORSE

# --- exit codes ---------------------------------------------------------------------------------
# GNU make ends with 2 whenever a recipe fails, whatever the recipe's code. A program target `t`
# therefore runs its program in `.run/t`, which always succeeds and records the program's exit code
# in .make/status-t.<make's pid>; `t` itself then ends make with that code through $(exit-status), a
# function of make/exit_status.c (built on first use, loaded into make). `make plan` so returns
# what the program returns (docs/reliability.md). Without a C compiler, `t` fails its recipe with
# the code instead: make exits 2 and its "*** [t] Error N" line names the program's code.
ifneq ($(filter load,$(.FEATURES)),)
-load .make/exit_status.so
endif
.make/exit_status.so: make/exit_status.c
	@mkdir -p .make && $(CC) -shared -fPIC -O2 -o $@.$$$$ $< 2>/dev/null && mv -f $@.$$$$ $@ || rm -f $@.$$$$
STATUS := .make/status
# $(call run,SETTINGS,COMMAND,OTHERS): a program's recipe (in .run/<target>): SETTINGS as NBA_*
# variables, OTHERS (the flags COMMAND reads) only announced when found in the environment
run = $(call announce,$(1) $(3)) $(call nba_env,$(1)) $(2); echo $$? > $(STATUS)-$(@F).$$PPID
PROGRAMS := seed check-sources build simulate-outcomes simulate-days docs bi plan apply activate explain runs status \
	replay-dlq prompt llm-batch-export llm-batch-run llm-batch-submit llm-batch-import eval
.PHONY: $(PROGRAMS) $(addprefix .run/,$(PROGRAMS))
$(addprefix .run/,$(PROGRAMS)): | .make
.make:
	@mkdir -p $@
$(PROGRAMS): %: .run/%
	@$(if $(filter .make/exit_status.so,$(.LOADED)),$(exit-status $(STATUS)-$@),exit "$$(cat $(STATUS)-$@.$$PPID; rm -f $(STATUS)-$@.$$PPID)")


AIRFLOW_VENV := .venv-airflow
SPARK_VENV := .venv-spark
SPARK_STAMP := $(SPARK_VENV)/.installed

DBT_ARGS := --project-dir warehouse/dbt --profiles-dir warehouse/dbt

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "[setup] installing the project into $(VENV) (first run only)" >&2
	@$(PY) -m pip install --quiet --upgrade pip wheel setuptools >&2
	@# setuptools prints an information block ("Editable installation ... folders in your working
	@# directory with the same name as your package") for every editable install of a flat layout
	@# like this one: that is the point of it here, so it is filtered (a message filter, no category).
	@# requirements.lock pins the tested set (make lock): constraints, so the project itself stays editable
	@PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet -c requirements.lock -e '.[dev]' >&2
	@touch $(STAMP)

.PHONY: help
help: ## List every target and every parameter
	@if [ -t 1 ]; then c='\033[36m'; r='\033[0m'; else c=''; r=''; fi; \
	awk -v c="$$c" -v r="$$r" 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  %s%-18s%s %s\n", c, $$1, r, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Parameters, given on make's command line (make plan MODE=llm); [default]. SEGMENT, DRY_RUN, GOAL,"
	@echo "DISCOUNT_CAP, SUPPRESS_HOURS and MODE count from the environment too (the command line wins):"
	@echo "  plan, activate (and eval, prompt where they apply):"
	@echo "    SEGMENT=[all]|high_value_lapse_risk|new_users_first_week_intent|churn_rescue_nps"
	@echo "    MODE=[rules]|learned|llm  GOAL=[90d_clv]|engagement  DISCOUNT_CAP=[5] (0-100)"
	@echo "    SUPPRESS_HOURS=[24] (0-8760)  AS_OF=[data date, 14:00 UTC]  LIMIT=[all] (first N)"
	@echo "    PROMPT_VERSION=[v3]  GLOBAL_HOLDOUT_PCT=[5]  SEGMENT_HOLDOUT_PCT=[10]  OUTPUT=[table]|json"
	@echo "  activate: DRY_RUN=[1]|0  FORCE=[0]|1 (past the circuit breaker and promotion gate)"
	@echo "  apply: PLAN=<run id of a plan> (required)  FORCE=[0]|1  OUTPUT=[table]|json"
	@echo "  explain: CUSTOMER_ID=<id> (required)  RUN_ID=[latest]  PROMPT=[0]|1  OUTPUT=[table]|json"
	@echo "  runs: LAST=[10]  OUTPUT=[table]|json     status: OUTPUT=[table]|json"
	@echo "  eval: MODE=[llm]  BASELINE=[in_place]|rules|random|learned|<prompt version>  SAMPLE=[all]|N"
	@echo "        FAIL_IF_WORSE=[0]|1 (exit 1 unless the candidate is shown at least as good)  OUTPUT=[table]|json"
	@echo "  llm-batch-export: the plan's (MODE=llm) + OUT=<path>  OVERWRITE=[0]|1 (an existing OUT is moved aside first)"
	@echo "  llm-batch-run, llm-batch-submit: FILE= OUT=  (submit: OVERWRITE=[0]|1, an existing OUT is moved aside first)"
	@echo "  llm-batch-import: the plan's (as exported) + FILE=<output file>  SKIP_UNKNOWN=[0]|1"
	@echo "  prompt: CUSTOMER_ID=<id>     simulate-days: DAYS=[10] SEEDS=[0] (comma-separated) CANDIDATE=[learned]|degraded"
	@echo "  replay-dlq: OUTPUT=[table]|json     bi: BI_INCLUDE_PII=[0]|1 (personal columns in bi/)"
	@echo "  data: CUSTOMERS=[5000]  SEED=[42]  DATA_AS_OF=[2026-11-27]"
	@echo "  check-sources, build: MAPPING=<mapping file> (your tables for the raw contract; also NBA_SOURCES__MAPPING; docs/sources.md)"
	@echo "  build: OVERWRITE=[0]|1 (a file at NBA_DUCKDB_PATH that is not our warehouse is moved aside first;"
	@echo "         NBA_WAREHOUSE__OVERWRITE=1 does the same for plan and activate)"
	@echo "Everything else is an NBA_* environment variable (README): destinations, NBA_PLAN__MAX_AGE_MINUTES,"
	@echo "NBA_ALERTS__WEBHOOK_URL / NBA_ALERTS__SECRET, NBA_LLM__*, NBA_DELIVERY__*."

.PHONY: install
install: $(STAMP) ## Create .venv and install the project with its dev tools (versions pinned by requirements.lock)

.PHONY: lock
lock: $(STAMP) ## Rewrite requirements.lock from the versions installed in .venv (the set the tests passed on)
	$(PY) make/lock.py && touch $(STAMP)

.PHONY: seed
seed: ## Generate synthetic raw data (CUSTOMERS, SEED, DATA_AS_OF) and load the dbt seeds
.run/seed: $(STAMP)
	@$(call run,,$(PY) -m warehouse.cli generate $(call flag,SEED,--seed) $(call flag,CUSTOMERS,--customers) \
		$(call flag,DATA_AS_OF,--as-of) && $(PY) -m warehouse.cli seed,SEED CUSTOMERS DATA_AS_OF)

.PHONY: check-sources
check-sources: ## Check the raw sources (or your tables through MAPPING=sources.yml) against the raw contract, one line per problem
.run/check-sources: $(STAMP)
	@$(call run,,$(PY) -m warehouse.cli check-sources $(call flag,MAPPING,--mapping),MAPPING)

.PHONY: build
build: ## dbt build into a new file, swapped in only if every test passes (generates data if missing; MAPPING= reads your tables)
.run/build: $(STAMP)
	@$(call run,,$(PY) -m warehouse.cli build $(call switch,OVERWRITE,--overwrite) $(call flag,MAPPING,--mapping),OVERWRITE MAPPING)

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
simulate-outcomes: ## Draw synthetic outcomes for the latest run from the generator's truth (feeds the lift mart)
.run/simulate-outcomes: $(STAMP)
	@$(call run,,$(PY) -m activation.cli simulate-outcomes)

.PHONY: simulate-days
simulate-days: ## DAYS daily cycles on a copy of the demo world: CANDIDATE ramps against rules, outcomes drawn, it retrains, the gate decides (SEEDS=0,1,2)
.run/simulate-days: $(STAMP)
	@$(call run,,$(PY) -m evals.simulate_days $(call flag,DAYS,--days) $(call flag,GOAL,--goal) \
		$(call flag,SEEDS,--seeds) $(call flag,CANDIDATE,--candidate),DAYS GOAL SEEDS CANDIDATE)

.PHONY: test-dbt
test-dbt: $(STAMP) ## Only the warehouse tests (generator, dbt build, corruption, BI export)
	$(PY) -m pytest -q tests/warehouse

.PHONY: docs
docs: ## Generate dbt docs (catalog and lineage)
.run/docs: $(STAMP)
	@$(call run,,$(PY) -m warehouse.cli docs)

.PHONY: serve-docs
serve-docs: $(STAMP) ## Serve dbt docs on http://localhost:8080 (generated first only if stale)
	$(PY) -m warehouse.cli serve-docs --port 8080

.PHONY: bi
bi: ## Export dim_customer, customer 360 and segment scores to bi/ (no personal columns unless BI_INCLUDE_PII=1)
.run/bi: $(STAMP)
	@$(call run,,$(PY) -m warehouse.cli bi $(call switch,BI_INCLUDE_PII,--include-pii),BI_INCLUDE_PII)

.PHONY: plan
plan: ## Decide and write the plan, sending nothing: outbox/<run_id>/ (plan.txt per customer)
.run/plan: $(STAMP)
	@$(call run,$(PLAN_PARAMS),$(PY) -m activation.cli plan)

.PHONY: apply
apply: ## Send exactly plan PLAN=<run_id> to NBA_DESTINATIONS (refused if stale or outdated)
.run/apply: $(STAMP)
	@$(call run,FORCE OUTPUT,$(PY) -m activation.cli apply $(call flag,PLAN,--plan),PLAN)

.PHONY: activate
activate: ## Decide and activate in one go (DRY_RUN=1 by default: the same as make plan)
.run/activate: $(STAMP)
	@$(call run,$(RUN_PARAMS),$(PY) -m activation.cli activate)

.PHONY: explain
explain: ## Explain CUSTOMER_ID's decision: segment, eligibility, proposal, guardrails, deliveries
.run/explain: $(STAMP)
	@$(call run,OUTPUT PROMPT_VERSION,$(PY) -m activation.cli explain $(call flag,CUSTOMER_ID,--customer-id) \
		$(call flag,RUN_ID,--run-id) $(call switch,PROMPT,--prompt),CUSTOMER_ID RUN_ID PROMPT)

.PHONY: runs
runs: ## The last LAST=10 runs: kind, status, sends, rows delivered and not, duration
.run/runs: $(STAMP)
	@$(call run,OUTPUT,$(PY) -m activation.cli runs $(call flag,LAST,--last),LAST)

.PHONY: status
status: ## The latest run, what is owed to each destination, the plan waiting to be applied
.run/status: $(STAMP)
	@$(call run,OUTPUT,$(PY) -m activation.cli status)

.PHONY: replay-dlq
replay-dlq: ## Re-send every row still owed (pending, failed) and the dead-letter queue
.run/replay-dlq: $(STAMP)
	@$(call run,OUTPUT,$(PY) -m activation.cli replay-dlq)

.PHONY: destinations-up
destinations-up: $(STAMP) ## Run local HubSpot, Salesforce (TLS) and webhook servers on 127.0.0.1 for a live demo
	$(PY) -m testing.local_servers all

.PHONY: prompt
prompt: ## Show the rendered context and prompt for CUSTOMER_ID (PROMPT_VERSION)
.run/prompt: $(STAMP)
	@$(call run,GOAL DISCOUNT_CAP PROMPT_VERSION AS_OF,$(PY) -m agent.cli prompt \
		$(call flag,CUSTOMER_ID,--customer-id),CUSTOMER_ID)

.PHONY: llm-serve
llm-serve: $(STAMP) ## Serve the embedded model (SmolLM2-135M on llama-server) on 127.0.0.1:8081 for prompt work
	$(PY) -m agent.cli llm-serve --port 8081

# The plan's parameters (as make plan reads them; MODE is llm) select the requests a batch file holds.
BATCH_PARAMS := SEGMENT MODE GOAL DISCOUNT_CAP SUPPRESS_HOURS PROMPT_VERSION AS_OF GLOBAL_HOLDOUT_PCT \
	SEGMENT_HOLDOUT_PCT LIMIT

.PHONY: llm-batch-export
llm-batch-export: ## Write the plan's distinct LLM requests not yet cached as an OpenAI Batch API file OUT=
.run/llm-batch-export: $(STAMP)
	@$(call run,$(BATCH_PARAMS),$(PY) -m agent.batch_cli export $(call flag,OUT,--out) \
		$(call switch,OVERWRITE,--overwrite),OUT OVERWRITE)

.PHONY: llm-batch-run
llm-batch-run: ## Answer Batch API file FILE= with the embedded model (or OPENAI_BASE_URL) into OUT=, resumably
.run/llm-batch-run: $(STAMP)
	@$(call run,,$(PY) -m agent.batch_cli run $(call flag,FILE,--file) $(call flag,OUT,--out),FILE OUT)

.PHONY: llm-batch-submit
llm-batch-submit: ## Run Batch API file FILE= on the endpoint's Batch API (OPENAI_*); answers to OUT=
.run/llm-batch-submit: $(STAMP)
	@$(call run,,$(PY) -m agent.batch_cli submit $(call flag,FILE,--file) $(call flag,OUT,--out) \
		$(call switch,OVERWRITE,--overwrite),FILE OUT OVERWRITE)

.PHONY: llm-batch-import
llm-batch-import: ## Store Batch API answers FILE= in the decision cache (the plan's parameters, as exported)
.run/llm-batch-import: $(STAMP)
	@$(call run,$(BATCH_PARAMS),$(PY) -m agent.batch_cli import $(call flag,FILE,--file) \
		$(call switch,SKIP_UNKNOWN,--skip-unknown),FILE SKIP_UNKNOWN)

.PHONY: record-cassettes
record-cassettes: $(STAMP) ## Re-record the LLM cassettes against a real model server (embedded unless OPENAI_BASE_URL)
	$(if $(value OPENAI_BASE_URL),,$(PY) -m agent.cli llm-prepare)
	NBA_RECORD=1 $(PY) -m pytest -q tests/agent -k cassette -p no:randomly

.PHONY: eval
eval: ## Offline eval: MODE (default llm) PROMPT_VERSION vs BASELINE on SAMPLE customers; report in reports/
.run/eval: $(STAMP)
	@$(call run,$(EVAL_PARAMS),$(PY) -m evals.cli)

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
	rm -rf warehouse/data warehouse/dbt/target warehouse/dbt/logs warehouse/dbt/*.duckdb warehouse/dbt/.*-build warehouse/dbt/.*.lock outbox bi reports .cache .make

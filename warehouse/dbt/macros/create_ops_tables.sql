{#
  Operational tables written by Python (activation and evals), read by dbt marts as sources.
  dbt owns their DDL so that a fresh build always has them (empty) and the marts over them build.
  Called from on-run-start in dbt_project.yml. Create-if-not-exists: never drops history; a new
  column comes as `alter table ... add column if not exists` (migrations are additive only).
  ops.delivery_state is the truth of delivery: one row per (decision, destination) with the payload
  it was first sent with, its status (pending, delivered, failed, dead_letter) and attempt count.
  ops.deferred_sends is the queue of live deferred decisions: each waits for its send-at time (the end
  of the customer's quiet hours); it is sent once it has a delivery_state row, or closed with a reason.
  ops.sync_state is no longer written (kept so older warehouses keep their history).
  ops.warehouse_marker says the file is this project's warehouse: one row, written by Python's
  atomic build after dbt (warehouse/ownership.py), so a build never replaces another project's file.
  Dispatched per adapter: DuckDB (where Python writes them) and Spark (empty tables of the same
  columns, so the marts over them build and test there too).
#}
{% macro create_ops_tables() %}
  {{- return(adapter.dispatch('create_ops_tables')()) -}}
{% endmacro %}

{% macro default__create_ops_tables() %}{% endmacro %}

{% macro duckdb__create_ops_tables() %}
  create schema if not exists ops;
  create table if not exists ops.run_log (
    run_id varchar primary key, started_at timestamp, finished_at timestamp, as_of timestamp,
    mode varchar, segment varchar, goal varchar, dry_run boolean, discount_cap double,
    suppress_hours double, prompt_version varchar, model varchar, status varchar, summary_json varchar
  );
  create table if not exists ops.decision_log (
    run_id varchar, decision_id varchar, as_of timestamp, customer_id varchar, segment varchar,
    goal varchar, arm varchar, status varchar, reasons varchar, channel varchar, template_id varchar,
    discount_pct double, proposed_discount_pct double, subject varchar, message varchar,
    policy varchar, model varchar, prompt_version varchar, context_hash varchar, propensity double,
    fallback_reason varchar, defer_until timestamp, llm_attempts integer, prompt_tokens integer,
    completion_tokens integer, llm_latency_ms double, guardrail_report varchar, dry_run boolean
  );
  alter table ops.decision_log add column if not exists action_pmf varchar;
  create table if not exists ops.delivery_log (
    run_id varchar, decision_id varchar, customer_id varchar, destination varchar,
    idempotency_key varchar, payload_hash varchar, attempt integer, status varchar,
    destination_record_id varchar, error varchar, "at" timestamp
  );
  create table if not exists ops.contact_ledger (
    customer_id varchar, channel varchar, destination varchar, contacted_at timestamp,
    decision_id varchar, run_id varchar
  );
  create table if not exists ops.sync_state (
    destination varchar, record_key varchar, payload_hash varchar, last_status varchar,
    last_attempt_at timestamp, last_success_at timestamp, primary key (destination, record_key)
  );
  create table if not exists ops.dead_letter (
    run_id varchar, decision_id varchar, destination varchar, idempotency_key varchar,
    payload varchar, error varchar, "at" timestamp, replayed_at timestamp
  );
  alter table ops.dead_letter add column if not exists replay_outcome varchar;
  create table if not exists ops.delivery_state (
    decision_id varchar not null, destination varchar not null, customer_id varchar,
    record_key varchar, payload_hash varchar, idempotency_key varchar, item_json varchar,
    status varchar, attempts integer, first_run_id varchar, last_run_id varchar,
    last_error varchar, created_at timestamp, updated_at timestamp, delivered_at timestamp,
    primary key (decision_id, destination)
  );
  create table if not exists ops.decision_outcomes (
    decision_id varchar, customer_id varchar, converted_14d boolean, revenue_90d double,
    observed_at timestamp
  );
  create table if not exists ops.eval_runs (
    eval_id varchar, created_at timestamp, candidate varchar, baseline varchar, sample_size integer,
    report_json varchar
  );
  create table if not exists ops.ramps (
    ramp_id varchar, candidate varchar, incumbent varchar, share double, margin double,
    started_at timestamp, updated_at timestamp, state varchar, decisions integer, estimate double,
    low double, high double, incumbent_value double, reason varchar
  );
  create table if not exists ops.ramp_assignments (
    run_id varchar, customer_id varchar, ramp_id varchar, arm varchar, share double,
    candidate_pmf varchar, incumbent_pmf varchar
  );
  alter table ops.ramps add column if not exists screen_low double;
  create table if not exists ops.deferred_sends (
    decision_id varchar primary key, customer_id varchar, channel varchar, send_at timestamp,
    decided_run_id varchar, decision_json varchar, created_at timestamp, closed_at timestamp,
    closed_run_id varchar, close_reason varchar
  );
  create table if not exists ops.warehouse_marker (
    project varchar, marked_at timestamp, built_at timestamp, main_relations varchar
  );
{% endmacro %}

{#
  Spark: hooks run one statement at a time, so each DDL is its own run_query. Only the tables the
  ops source declares (read by marts); Python writes the ops tables to DuckDB, not to Spark.
#}
{% macro spark__create_ops_tables() %}
  {% if execute %}
  {% set ddl = [
    "create database if not exists ops",
    "create table if not exists ops.decision_log (
      run_id string, decision_id string, as_of timestamp, customer_id string, segment string,
      goal string, arm string, status string, reasons string, channel string, template_id string,
      discount_pct double, proposed_discount_pct double, subject string, message string,
      policy string, model string, prompt_version string, context_hash string, propensity double,
      fallback_reason string, defer_until timestamp, llm_attempts int, prompt_tokens int,
      completion_tokens int, llm_latency_ms double, guardrail_report string, dry_run boolean,
      action_pmf string
    ) using parquet",
    "create table if not exists ops.delivery_log (
      run_id string, decision_id string, customer_id string, destination string,
      idempotency_key string, payload_hash string, attempt int, status string,
      destination_record_id string, error string, `at` timestamp
    ) using parquet",
    "create table if not exists ops.contact_ledger (
      customer_id string, channel string, destination string, contacted_at timestamp,
      decision_id string, run_id string
    ) using parquet",
    "create table if not exists ops.decision_outcomes (
      decision_id string, customer_id string, converted_14d boolean, revenue_90d double,
      observed_at timestamp
    ) using parquet",
  ] %}
  {% for statement in ddl %}
    {% do run_query(statement) %}
  {% endfor %}
  {% endif %}
{% endmacro %}

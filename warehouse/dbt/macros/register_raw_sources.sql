{#
  The raw source tables. On DuckDB each source reads its Parquet file directly (meta
  external_location in models/staging/_sources.yml), so there is nothing to do. On Spark the same
  files are registered, on-run-start, as external tables raw.<name> over NBA_RAW_DIR (absolute:
  warehouse.dbt_runner resolves it), re-pointed on every run; dropping an external table never
  deletes its files.
#}
{% macro register_raw_sources() %}
  {{- return(adapter.dispatch('register_raw_sources')()) -}}
{% endmacro %}

{% macro default__register_raw_sources() %}{% endmacro %}

{% macro spark__register_raw_sources() %}
  {% if execute %}
  {% set raw_dir = env_var('NBA_RAW_DIR', 'warehouse/data/raw') %}
  {% do run_query("create database if not exists raw") %}
  {% for node in graph.sources.values() | selectattr('source_name', 'equalto', 'raw') | sort(attribute='name') %}
    {% do run_query("drop table if exists raw." ~ node.name) %}
    {% do run_query("create table raw." ~ node.name ~ " using parquet location '" ~ raw_dir ~ "/" ~ node.name ~ ".parquet'") %}
  {% endfor %}
  {% endif %}
{% endmacro %}

{#
  Source freshness on the data's own clock. dbt compares max(loaded_at_field) with `snapshotted_at`,
  which its default macro takes from current_timestamp. The raw data here is a snapshot cut at the
  start of its as_of date (the generator's meta table, or the as_of var), so "now" for freshness is
  that moment: a table whose latest row is far before it stopped short of the others.
  --vars '{freshness_clock: wall}' restores current_timestamp (data landed by a real loader).
  These override dbt's default__collect_freshness / default__collect_freshness_custom_sql: a root
  project's macro of the same name wins the dispatch.
#}
{% macro freshness_clock() %}
  {%- if var('freshness_clock', 'data') == 'wall' -%}
    {{ current_timestamp() }}
  {%- elif var('as_of', none) -%}
    cast(cast('{{ var("as_of") }}' as date) as timestamp)
  {%- else -%}
    (select cast(max(as_of_date) as timestamp) from {{ source('raw', 'generator_meta') }})
  {%- endif -%}
{% endmacro %}

{% macro default__collect_freshness(source, loaded_at_field, filter) %}
  {% call statement('collect_freshness', fetch_result=True, auto_begin=False) -%}
    select
      max({{ loaded_at_field }}) as max_loaded_at,
      {{ freshness_clock() }} as snapshotted_at
    from {{ source }}
    {% if filter %}
    where {{ filter }}
    {% endif %}
  {% endcall %}
  {{ return(load_result('collect_freshness')) }}
{% endmacro %}

{% macro default__collect_freshness_custom_sql(source, loaded_at_query) %}
  {% call statement('collect_freshness_custom_sql', fetch_result=True, auto_begin=False) -%}
  with source_query as (
    {{ loaded_at_query }}
  )
  select
    (select * from source_query) as max_loaded_at,
    {{ freshness_clock() }} as snapshotted_at
  {% endcall %}
  {{ return(load_result('collect_freshness_custom_sql')) }}
{% endmacro %}

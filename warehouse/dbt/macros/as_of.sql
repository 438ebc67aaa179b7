{#
  The run's as_of date. Set it with --vars '{as_of: "YYYY-MM-DD"}'; left unset (the default), it is
  read from the generator's meta table, so dbt and Python agree on the date the data is "as of".
#}
{% macro as_of_date() %}
  {%- if var('as_of', none) -%}
    cast('{{ var("as_of") }}' as date)
  {%- else -%}
    (select max(as_of_date) from {{ ref('stg_raw__generator_runs') }})
  {%- endif -%}
{% endmacro %}

{# Whole days from a timestamp/date expression to the as_of date (portable: dbt.datediff). #}
{% macro days_before_as_of(expr, as_of='as_of_date') %}
  {{ dbt.datediff(expr, as_of, 'day') }}
{% endmacro %}

{#
  The project's own generic tests (dbt hub packages cannot be installed here).
  Each returns the offending rows; a test fails when it returns any.
#}

{% test non_negative(model, column_name) %}
select {{ column_name }} as offending_value
from {{ model }}
where {{ column_name }} < 0
{% endtest %}

{% test between(model, column_name, min_value, max_value) %}
select {{ column_name }} as offending_value
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}

{% test not_empty(model) %}
select 1 as no_rows
from (select count(*) as n from {{ model }}) as counted
where counted.n = 0
{% endtest %}

{% test unique_combination(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}

{# The propensity a logging policy gave its chosen action: strictly positive, at most 1. #}
{% test valid_propensity(model, column_name) %}
select {{ column_name }} as offending_value
from {{ model }}
where {{ column_name }} is null or {{ column_name }} <= 0 or {{ column_name }} > 1
{% endtest %}

{# Timestamps must not be after the as_of date (no activity from the future). #}
{% test not_after_as_of(model, column_name) %}
select {{ column_name }} as offending_value
from {{ model }}
where cast({{ column_name }} as date) > {{ as_of_date() }}
{% endtest %}

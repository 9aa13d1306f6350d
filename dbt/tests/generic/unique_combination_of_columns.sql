{#- Rows must be unique over `columns` (dbt-utils' unique_combination_of_columns, without the package:
    dbt deps would need a registry this platform does not fetch from at run time). -#}
{% test unique_combination_of_columns(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

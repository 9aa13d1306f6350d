{#-
  Restrict a model to the run's data interval [var('start_date'), var('end_date')).
  With no interval (a full rebuild) the filter is always true.
-#}
{% macro in_data_interval(column) -%}
    {%- set start = var('start_date', none) -%}
    {%- set end = var('end_date', none) -%}
    {%- if start and end -%}
        ({{ column }} >= date'{{ start }}' and {{ column }} < date'{{ end }}')
    {%- elif start -%}
        ({{ column }} >= date'{{ start }}')
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Same interval widened to whole calendar years, for marts partitioned by year. -#}
{% macro in_data_interval_years(date_column) -%}
    {%- set start = var('start_date', none) -%}
    {%- set end = var('end_date', none) -%}
    {%- if start and end -%}
        (year({{ date_column }}) between year(date'{{ start }}') and year(date_sub(date'{{ end }}', 1)))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#-
  Every non-null value of the column matches the Java regular expression `pattern` (Spark's rlike). The
  pattern becomes a Spark string literal, where a backslash is an escape: write classes ([+], [0-9]).
-#}
{% test matches_pattern(model, column_name, pattern) %}
{%- if "'" in pattern or "\\" in pattern -%}
    {{ exceptions.raise_compiler_error("matches_pattern: write " ~ pattern ~ " without quotes or backslashes") }}
{%- endif %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null and not {{ column_name }} rlike '{{ pattern }}'
{% endtest %}

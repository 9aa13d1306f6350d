{#- No value of the column is longer than `length` characters (null passes). -#}
{% test max_length(model, column_name, length) %}
select {{ column_name }}, char_length({{ column_name }}) as value_length
from {{ model }}
where char_length({{ column_name }}) > {{ length }}
{% endtest %}

{#- Namespaces are the lakehouse layers themselves (bronze/silver/gold), never <target>_<custom>. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}

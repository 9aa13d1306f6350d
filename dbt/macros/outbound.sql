{#-
  The reverse-ETL feed (models/outbound): what its out_<crm>__<entity>s models share.
-#}

{#-
  row_hash of an outbound row: SHA-256 (hex) of the JSON object {column: value cast to string} over
  `columns` — exactly the fields the CRM receives, in the order given. Every value is cast to string so
  the text is the same whatever the type (decimal(18,2) always has 2 decimals: "10501.00"); a null is
  written as null, never dropped, so null and "" differ. A changed hash is a deal to update; columns the CRM
  does not receive (changed_at, keys) stay out, so touching them sends nothing.
-#}
{% macro outbound_row_hash(columns) -%}
    sha2(to_json(
        named_struct(
            {%- for column in columns %}
            '{{ column }}', cast({{ column }} as string){{ ',' if not loop.last }}
            {%- endfor %}
        ),
        map('ignoreNullFields', 'false')
    ), 256)
{%- endmacro %}

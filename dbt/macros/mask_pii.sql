{#-
  How silver and gold expose personal data (phones, e-mails): the platform setting ELT_PII_MASKING
  (elt_platform.pii), passed as var pii_masking — older runs pass only iin_masking, which then decides.
  'hash': keyed SHA-256 with the same key as mask_iin (macros/kz_iin.sql), substituted by Spark from its
  SQL conf spark.elt.iin_hash_key, so the key never appears in compiled SQL. Null stays null.
-#}
{% macro mask_pii(col) -%}
    {%- if var('pii_masking', var('iin_masking', 'hash')) == 'clear' -%}
        {{ col }}
    {%- else -%}
        sha2(concat('${spark.elt.iin_hash_key}', ':', {{ col }}), 256)
    {%- endif -%}
{%- endmacro %}

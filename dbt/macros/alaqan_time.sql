{#-
  Time convention (docs/STYLE.md, "Conventions every source follows" — Time). Alaqan sends the site's
  local wall-clock times ('HH:MM:SS' of the requested day) with no zone: silver and gold keep them as
  TIMESTAMP_NTZ (Iceberg `timestamp`) and add the instant as TIMESTAMP (Iceberg `timestamptz`, UTC),
  computed with the source's zone.

  The zone is the var `alaqan_timezone`, which the transform always passes (elt_platform.sources.alaqan.dbt:
  env ELT_ALAQAN_TIMEZONE, default the registry's SOURCE.timezone). The fallback below serves runs that pass
  no vars (`make dbt-build`); tests/plugins/sources/alaqan/test_dbt_settings.py keeps it equal to the registry.
-#}
{% macro alaqan_timezone() -%}
    {%- set zone = var('alaqan_timezone', 'Asia/Almaty') -%}
    {%- if "'" in zone or "\\" in zone -%}
        {{ exceptions.raise_compiler_error("alaqan_timezone " ~ zone ~ " is not a time zone name") }}
    {%- endif -%}
    '{{ zone }}'
{%- endmacro %}

{#-
  The UTC instant of a local wall-clock TIMESTAMP_NTZ in the Alaqan zone. make_timestamp with an explicit
  zone does not depend on the session time zone (to_utc_timestamp on a TIMESTAMP_NTZ would: it casts
  through the session zone first). A local time skipped by a DST change moves forward, as in java.time.
-#}
{% macro alaqan_local_to_utc(local_ts) -%}
    make_timestamp(
        year({{ local_ts }}), month({{ local_ts }}), day({{ local_ts }}),
        hour({{ local_ts }}), minute({{ local_ts }}), second({{ local_ts }}),
        {{ alaqan_timezone() }}
    )
{%- endmacro %}

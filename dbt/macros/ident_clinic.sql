{#-
  iDent (MS SQL Server of the clinics) semantics shared by the ident staging models and the clinic
  models. The rules are documented in models/staging/ident/_ident__docs.md.
-#}

{#-
  The branch map: branch number → the database it lives in and the OwnCompanies ids that make it up
  (two branches can share one database and are told apart by OwnCompanies). The transform passes the var
  (elt_platform.sources.ident.dbt: the manifest schemas/sources/ident.yaml, else env ELT_IDENT_BRANCHES);
  the JSON below serves runs without vars and must stay equal to DEFAULT_BRANCHES there
  (tests/plugins/sources/ident/test_dbt_settings.py checks it).
-#}
{% macro ident_branches() -%}
    {%- set given = var('ident_branches', none) -%}
    {%- if given is string -%}
        {%- set given = fromjson(given) -%}
    {%- endif -%}
    {%- if not given -%}
        {%- set given = fromjson('{"1": {"database": "1", "own_companies": [1]}, "2": {"database": "1", "own_companies": [2]}, "3": {"database": "2", "own_companies": [1]}, "4": {"database": "3", "own_companies": [1]}, "5": {"database": "4", "own_companies": [1]}}') -%}
    {%- endif -%}
    {{ return(given) }}
{%- endmacro %}

{#- A database key is quoted into SQL: letters, digits, `_` and `-` only. -#}
{% macro ident_database_literal(key) -%}
    {%- set text = key | string -%}
    {%- if not text or not text.replace('_', '').replace('-', '').isalnum() -%}
        {{ exceptions.raise_compiler_error("iDent database key " ~ text ~ " must be letters, digits, _ or -") }}
    {%- endif -%}
    '{{ text }}'
{%- endmacro %}

{#- The branch map as rows (branch_number, source_db, own_company_id), one per OwnCompanies id. -#}
{% macro ident_branch_map() -%}
    {%- set rows = [] -%}
    {%- for number, branch in ident_branches().items() -%}
        {%- for company in branch['own_companies'] -%}
            {%- do rows.append('(' ~ (number | int) ~ ', ' ~ ident_database_literal(branch['database']) ~ ', ' ~ (company | int) ~ ')') -%}
        {%- endfor -%}
    {%- endfor -%}
    select
        cast(branch_number as int) as branch_number,
        cast(source_db as string) as source_db,
        cast(own_company_id as bigint) as own_company_id
    from values {{ rows | join(', ') }} as branch_map (branch_number, source_db, own_company_id)
{%- endmacro %}

{#-
  The IANA zone of each database's wall-clock times (var ident_timezones: {database: zone}); a database
  not listed is in ident_default_timezone (Asia/Almaty).
-#}
{% macro ident_timezones() -%}
    {%- set given = var('ident_timezones', {}) -%}
    {%- if given is string -%}
        {%- set given = fromjson(given) -%}
    {%- endif -%}
    {{ return(given or {}) }}
{%- endmacro %}

{% macro ident_zone_literal(zone) -%}
    {%- if not zone or "'" in zone or "\\" in zone -%}
        {{ exceptions.raise_compiler_error("iDent time zone " ~ zone ~ " is not a time zone name") }}
    {%- endif -%}
    '{{ zone }}'
{%- endmacro %}

{#-
  The UTC wall clock (TIMESTAMP_NTZ) of a local time of database `db_col`. One literal
  convert_timezone per database, so no zone name is read from data.
-#}
{% macro ident_local_to_utc(ts, db_col='source_db') -%}
    {%- set zones = ident_timezones() -%}
    {%- set default = var('ident_default_timezone', 'Asia/Almaty') -%}
    {%- if zones %}
    case
        {%- for db, zone in zones.items() %}
        when {{ db_col }} = {{ ident_database_literal(db) }} then convert_timezone({{ ident_zone_literal(zone) }}, 'UTC', {{ ts }})
        {%- endfor %}
        else convert_timezone({{ ident_zone_literal(default) }}, 'UTC', {{ ts }})
    end
    {%- else -%}
    convert_timezone({{ ident_zone_literal(default) }}, 'UTC', {{ ts }})
    {%- endif -%}
{%- endmacro %}

{#-
  A local time of database `db_col` as ISO 8601 with that zone's offset at that moment
  (2026-05-12T10:00:00+05:00); null stays null.
-#}
{% macro ident_iso8601(ts, db_col='source_db') -%}
    case when {{ ts }} is not null then concat(
        date_format({{ ts }}, "yyyy-MM-dd'T'HH:mm:ss"),
        case when timestampdiff(minute, {{ ident_local_to_utc(ts, db_col) }}, {{ ts }}) < 0 then '-' else '+' end,
        lpad(cast(floor(abs(timestampdiff(minute, {{ ident_local_to_utc(ts, db_col) }}, {{ ts }})) / 60) as string), 2, '0'),
        ':',
        lpad(cast(abs(timestampdiff(minute, {{ ident_local_to_utc(ts, db_col) }}, {{ ts }})) % 60 as string), 2, '0')
    ) end
{%- endmacro %}

{#-
  Tables the extract reads as full snapshots (manifest `load: full`; var ident_snapshot_tables, passed by
  elt_platform.sources.ident.dbt from the manifest — the list below serves runs without vars). They get no
  tombstones: a key missing from its database's latest snapshot is deleted.
-#}
{% macro ident_snapshot_tables() -%}
    {{ return(var('ident_snapshot_tables', ['persons', 'staffs', 'items', 'profession_names', 'own_companies', 'armchairs', 'reception_cancel_reasons', 'treatment_plan_stages', 'service_items', 'service_item_prices'])) }}
{%- endmacro %}

{#-
  The latest version of every key of bronze table ident_<table> per database: bronze keeps one row per
  (key, extract); the last load wins (then the later extract). Adds `recency` (always 1) and
  `key_deleted`: the latest row is a tombstone (is_deleted = true, written by the extract's reconciliation
  of incremental tables) or, for a snapshot table, the key is missing from the database's latest snapshot
  (its latest row was loaded before that snapshot; every row of one commit shares `_loaded_at`).
  `loaded_after` (a timestamp literal, incremental builds of tables that are not snapshots): only versions
  loaded after it are read. The latest version of a key with such a version is among them (the latest is
  the last loaded), so this gives exactly the changed keys' latest versions.
-#}
{% macro ident_latest_versions(table, key=['id'], loaded_after=none) -%}
{%- if loaded_after is not none and table in ident_snapshot_tables() -%}
    {{ exceptions.raise_compiler_error("ident_latest_versions: loaded_after needs a table that is not a snapshot, got " ~ table) }}
{%- endif -%}
select
    *,
    {%- if table in ident_snapshot_tables() %}
    coalesce(is_deleted, false) or _loaded_at < snapshot_loaded_at as key_deleted
    {%- else %}
    coalesce(is_deleted, false) as key_deleted
    {%- endif %}
from (
    select
        *,
        row_number() over (
            partition by source_db, {{ key | join(', ') }}
            order by _loaded_at desc, extract_date desc
        ) as recency,
        max(_loaded_at) over (partition by source_db) as snapshot_loaded_at
    from {{ source('ident', 'ident_' ~ table) }}
    {%- if loaded_after is not none %}
    where _loaded_at > {{ loaded_after }}
    {%- endif %}
) as versions
where recency = 1
{%- endmacro %}

{#- A person's full name "Surname Name Patronymic" from the parts given; null when all are blank. -#}
{% macro ident_full_name(surname, name, patronymic) -%}
    nullif(concat_ws(' ', nullif(trim({{ surname }}), ''), nullif(trim({{ name }}), ''), nullif(trim({{ patronymic }}), '')), '')
{%- endmacro %}

{#- Persons.Birthday (text): dd.mm.yyyy or yyyy-mm-dd; blank or anything else is null. -#}
{% macro ident_birthday(col) -%}
    coalesce(
        to_date(try_to_timestamp(nullif(trim({{ col }}), ''), 'dd.MM.yyyy')),
        to_date(try_to_timestamp(nullif(trim({{ col }}), ''), 'yyyy-MM-dd'))
    )
{%- endmacro %}

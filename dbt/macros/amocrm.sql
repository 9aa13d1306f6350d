{#-
  amoCRM semantics shared by the amocrm staging models and the sales marts (macros rather than ephemeral
  models so that dbt unit tests can feed the bronze sources directly). The rules are documented in
  models/staging/amocrm/_amocrm__docs.md.
-#}

{#-
  The custom-field map: which amoCRM field holds each value silver extracts, by field id or by code.
  The transform always passes the var (elt_platform.sources.amocrm.dbt: env ELT_AMOCRM_FIELDS over the
  defaults); the JSON below serves runs that pass no vars and must stay equal to DEFAULT_FIELDS there
  (tests/plugins/sources/amocrm/test_dbt_settings.py checks it).
-#}
{% macro amocrm_field_map() -%}
    {%- set defaults = fromjson('{"lead_bin": {"id": 501}, "lead_source": {"id": 502}, "company_bin": {"id": 701}, "company_industry": {"id": 702}, "contact_phone": {"code": "PHONE"}, "contact_email": {"code": "EMAIL"}}') -%}
    {%- set given = var('amocrm_fields', none) -%}
    {%- if given is string -%}
        {%- set given = fromjson(given) -%}
    {%- endif -%}
    {%- set fields = {} -%}
    {%- do fields.update(defaults) -%}
    {%- if given -%}
        {%- do fields.update(given) -%}
    {%- endif -%}
    {{ return(fields) }}
{%- endmacro %}

{#-
  The first non-empty value (as text) of the custom field `key` of the field map, from the JSON text of
  `custom_fields_values` (null or [{field_id, field_code, values: [{value, enum_id, enum_code}]}]).
  A field matches by `field_id` ({"id": n}) or, case-insensitively, by `field_code` ({"code": "PHONE"}).
-#}
{% macro amocrm_field_value(json_col, key) -%}
    {%- set fields = amocrm_field_map() -%}
    {%- if key not in fields -%}
        {{ exceptions.raise_compiler_error("amocrm_fields has no entry " ~ key) }}
    {%- endif -%}
    {%- set ref = fields[key] -%}
    {%- if ref.get('id') is not none -%}
        {%- set match = 'f.field_id = ' ~ (ref['id'] | int) -%}
    {%- elif ref.get('code') and (ref['code'] | string).replace('_', '').isalnum() -%}
        {%- set match = "upper(f.field_code) = '" ~ (ref['code'] | upper) ~ "'" -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("amocrm_fields." ~ key ~ " needs an id or a code, got " ~ ref) }}
    {%- endif -%}
    try_element_at(
        filter(
            flatten(
                transform(
                    filter(
                        from_json(
                            {{ json_col }},
                            'array<struct<field_id:bigint,field_code:string,values:array<struct<value:string,enum_code:string>>>>'
                        ),
                        f -> {{ match }} and f.values is not null
                    ),
                    f -> f.values
                )
            ),
            v -> nullif(trim(v.value), '') is not null
        ),
        1
    ).value
{%- endmacro %}

{#- An amoCRM time (Unix seconds, a real instant) as TIMESTAMP (Iceberg timestamptz); 0 means none. -#}
{% macro amocrm_timestamp(seconds_col) -%}
    timestamp_seconds(nullif({{ seconds_col }}, 0))
{%- endmacro %}

{#- Ids of an `_embedded` list ([{"id": n, ...}]) as array<bigint>, in the order sent, no repeats; [] if none. -#}
{% macro amocrm_ids(json_col) -%}
    coalesce(
        array_distinct(filter(transform(from_json({{ json_col }}, 'array<struct<id:bigint>>'), x -> x.id), i -> i is not null)),
        cast(array() as array<bigint>)
    )
{%- endmacro %}

{#- Names of `_embedded.tags` ([{"id", "name"}]) as a sorted array<string> without repeats or blanks; [] if none. -#}
{% macro amocrm_tag_names(json_col) -%}
    coalesce(
        array_sort(array_distinct(filter(
            transform(from_json({{ json_col }}, 'array<struct<name:string>>'), t -> trim(t.name)),
            n -> n is not null and n != ''
        ))),
        cast(array() as array<string>)
    )
{%- endmacro %}

{#-
  The zone of gold's local dates (var amocrm_timezone, passed by elt_platform.sources.amocrm.dbt: env
  ELT_AMOCRM_TIMEZONE, default the registry's SOURCE.timezone). The fallback serves runs without vars.
-#}
{% macro amocrm_timezone() -%}
    {%- set zone = var('amocrm_timezone', 'Asia/Almaty') -%}
    {%- if "'" in zone or "\\" in zone -%}
        {{ exceptions.raise_compiler_error("amocrm_timezone " ~ zone ~ " is not a time zone name") }}
    {%- endif -%}
    '{{ zone }}'
{%- endmacro %}

{#-
  The local wall-clock time (TIMESTAMP_NTZ) of an instant in the amoCRM zone. Built from the instant's
  Unix seconds so that the session time zone plays no part (from_utc_timestamp + to_date would read the
  result through it).
-#}
{% macro amocrm_local_datetime(ts) -%}
    convert_timezone('UTC', {{ amocrm_timezone() }}, timestampadd(second, unix_seconds({{ ts }}), timestamp_ntz'1970-01-01 00:00:00'))
{%- endmacro %}

{#- The local calendar day of an instant in the amoCRM zone. -#}
{% macro amocrm_local_date(ts) -%}
    to_date({{ amocrm_local_datetime(ts) }})
{%- endmacro %}

{#-
  Every row of the bronze table `table` (leads, contacts, companies, tasks: versioned by updated_at) with
  `recency` within its id: 1 = the latest version (greatest updated_at, then the last load).
-#}
{% macro amocrm_ranked_versions(table) -%}
select
    *,
    row_number() over (partition by id order by updated_at desc nulls last, _loaded_at desc) as recency
from {{ source('amocrm', table) }}
{%- endmacro %}

{#-
  The latest version of every `entity` (leads | contacts | companies) in bronze — greatest updated_at,
  then the last load — with its deletion state from the bronze flag and the event log:

  * deletion signals: the latest version's `is_deleted` (at its updated_at) and every `<e>_deleted` event;
  * restore signals: every `<e>_restored` event;
  * `is_deleted` = the last deletion signal is later than the last restore (or there is no restore);
    `deleted_at` = that deletion signal's time (null when live). A restore brings the record back; a
    version saying `is_deleted = false` does not by itself undo a logged deletion.

  Adds `recency` (always 1), `deletion_seconds` (last deletion signal) and `restore_seconds` (last
  restore); amocrm_is_deleted() turns them into the flag.
-#}
{% macro amocrm_current_versions(entity) -%}
    {%- set singular = {'leads': 'lead', 'contacts': 'contact', 'companies': 'company'}[entity] -%}
select
    latest.*,
    deletions.restore_seconds,
    greatest(
        deletions.deleted_seconds,
        case when latest.is_deleted then coalesce(latest.updated_at, 0) end
    ) as deletion_seconds
from (
    select *
    from (
        {{ amocrm_ranked_versions('amocrm_' ~ entity) | indent(8) }}
    ) as versions
    where recency = 1
) as latest
left join (
    select
        entity_id,
        max(case when type = '{{ singular }}_deleted' then created_at end) as deleted_seconds,
        max(case when type = '{{ singular }}_restored' then created_at end) as restore_seconds
    from {{ source('amocrm', 'amocrm_events') }}
    where type in ('{{ singular }}_deleted', '{{ singular }}_restored')
    group by entity_id
) as deletions
    on latest.id = deletions.entity_id
{%- endmacro %}

{#- Deletion state of a row of amocrm_current_versions (see there). -#}
{% macro amocrm_is_deleted() -%}
    coalesce(deletion_seconds is not null and (restore_seconds is null or deletion_seconds > restore_seconds), false)
{%- endmacro %}

{#-
  The change and deletion columns of a row of amocrm_current_versions, typed: who created/updated it, when,
  the extra Unix-seconds columns `timestamps` (e.g. closed_at) as timestamps, then `is_deleted` and
  `deleted_at` (the time of the deletion signal that holds; null when live).
-#}
{% macro amocrm_lifecycle_columns(timestamps=[]) -%}
    created_by,
    updated_by,
    {{ amocrm_timestamp('created_at') }} as created_at,
    {{ amocrm_timestamp('updated_at') }} as updated_at,
    {%- for column in timestamps %}
    {{ amocrm_timestamp(column) }} as {{ column }},
    {%- endfor %}
    {{ amocrm_is_deleted() }} as is_deleted,
    case when {{ amocrm_is_deleted() }} then {{ amocrm_timestamp('deletion_seconds') }} end as deleted_at
{%- endmacro %}

{#- Rows of the latest snapshot of a snapshot table (pipelines, users): one per id, the last load wins. -#}
{% macro amocrm_latest_snapshot(table) -%}
select *
from (
    select
        *,
        row_number() over (partition by id order by _loaded_at desc) as recency
    from {{ source('amocrm', table) }}
    where snapshot_date = (select max(snapshot_date) from {{ source('amocrm', table) }})
) as snapshot
where recency = 1
{%- endmacro %}

{#- A contact's phone in E.164 or null: the shared rules of macros/phone.sql. -#}
{% macro amocrm_phone_e164(col) -%}
    {{ phone_e164(col) }}
{%- endmacro %}

{#- A phone value was given but is no KZ/RU number (macros/phone.sql). -#}
{% macro amocrm_phone_is_invalid(col) -%}
    {{ phone_is_invalid(col) }}
{%- endmacro %}

{#- An e-mail lower-cased and trimmed; blank is null. -#}
{% macro amocrm_email(col) -%}
    nullif(lower(trim({{ col }})), '')
{%- endmacro %}

{#- System statuses of every pipeline (amoCRM): 142 = won ("Успешно реализовано"), 143 = lost. -#}
{% macro amocrm_won_status() %}142{% endmacro %}
{% macro amocrm_lost_status() %}143{% endmacro %}

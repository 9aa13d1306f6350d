{#-
  Bronze Alaqan events of the run's interval, typed and checked; `rejection_reason` is null for a
  usable event. A macro rather than an ephemeral model so that silver and its quarantine both read
  the source directly (and dbt unit tests can feed that source).

  `event_datetime` is the local wall-clock time (TIMESTAMP_NTZ) and `event_at_utc` its instant
  (TIMESTAMP, UTC) in the source's zone (macros/alaqan_time.sql). The time pattern is the parser's:
  strict 24-hour HH:MM:SS.
-#}
{% macro alaqan_validated_visits(relation) -%}
select
    *,
    {{ alaqan_local_to_utc('event_datetime') }} as event_at_utc,
    case
        when {{ kz_iin_problem('iin') }} is not null then {{ kz_iin_problem('iin') }}
        when event not in ('entry', 'exit') then 'unknown_event'
        when event_datetime is null then 'bad_time'
    end as rejection_reason
from (
    select
        visit_date,
        iin,
        lower(trim(event)) as event,
        event_time,
        case
            when event_time rlike '^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$'
                then to_timestamp_ntz(concat(cast(visit_date as string), ' ', event_time), 'yyyy-MM-dd HH:mm:ss')
        end as event_datetime,
        raw_json,
        loaded_at,
        _run_id as run_id,
        _source_uri as source_uri
    from {{ relation }}
    where {{ in_data_interval('visit_date') }}
) as typed
{%- endmacro %}

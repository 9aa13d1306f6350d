{#-
  Bronze Alaqan events of the run's interval, typed and checked; `rejection_reason` is null for a
  usable event. A macro rather than an ephemeral model so that silver and its quarantine both read
  the source directly (and dbt unit tests can feed that source).
-#}
{% macro alaqan_validated_visits(relation) -%}
select
    *,
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
        try_to_timestamp(concat(cast(visit_date as string), ' ', event_time), 'yyyy-MM-dd HH:mm:ss')
            as event_datetime,
        raw_json,
        loaded_at,
        _run_id as run_id
    from {{ relation }}
    where {{ in_data_interval('visit_date') }}
) as typed
{%- endmacro %}

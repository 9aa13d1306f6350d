-- Bronze events typed and checked; `rejection_reason` is null for a usable event.
with

source as (

    select * from {{ source('alaqan', 'alaqan_visits') }}
    where {{ in_data_interval('visit_date') }}

),

typed as (

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
    from source

),

checked as (

    select
        *,
        case
            when {{ kz_iin_problem('iin') }} is not null then {{ kz_iin_problem('iin') }}
            when event not in ('entry', 'exit') then 'unknown_event'
            when event_datetime is null then 'bad_time'
        end as rejection_reason
    from typed

)

select * from checked

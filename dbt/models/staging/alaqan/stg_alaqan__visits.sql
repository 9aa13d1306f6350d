{{
    config(
        alias='alaqan_visits',
        partition_by=['visit_date'],
    )
}}
-- silver.alaqan_visits: typed, validated, one row per distinct event.
-- Spark 4.0 has no TIME type, so `event_time` stays the validated 'HH:mm:ss' string and
-- `event_datetime` carries the typed value.
with

validated as (

    select * from ({{ alaqan_validated_visits(source('alaqan', 'alaqan_visits')) }}) as checked
    where rejection_reason is null

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by visit_date, iin, event, event_time
            order by loaded_at desc
        ) as occurrence
    from validated

),

final as (

    select
        visit_date,
        iin,
        event,
        event_time,
        event_datetime,
        loaded_at
    from deduplicated
    where occurrence = 1

)

select * from final

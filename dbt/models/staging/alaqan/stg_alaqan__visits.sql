{{
    config(
        alias='alaqan_visits',
        partition_by=['visit_date'],
        on_schema_change='fail',
    )
}}
-- silver.alaqan_visits: typed, validated, one row per distinct event.
-- Spark 4.0 has no TIME type, so `event_time` stays the validated 'HH:mm:ss' string;
-- `event_datetime` is the local wall-clock value (TIMESTAMP_NTZ) and `event_at_utc` its instant.
-- on_schema_change='fail': a changed column list or type stops the run instead of being cast into the
-- old table (see _alaqan__models.yml, "Schema changes").
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
        event_at_utc,
        loaded_at
    from deduplicated
    where occurrence = 1

)

select * from final

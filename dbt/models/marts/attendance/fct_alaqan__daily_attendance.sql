{{
    config(
        alias='alaqan_daily_attendance',
        partition_by=['year'],
    )
}}
-- gold.alaqan_daily_attendance: one row per person and day. Rebuilt for every calendar year the
-- run's interval touches (the table is partitioned by year). The hours rule is documented in
-- _attendance__models.yml and pinned by its unit tests.
with

events as (

    select
        visit_date,
        iin,
        event,
        event_datetime
    from {{ ref('stg_alaqan__visits') }}
    where {{ in_data_interval_years('visit_date') }}

),

ordered as (

    select
        *,
        lag(event) over day_order as previous_event,
        lag(event_datetime) over day_order as previous_datetime,
        lead(event) over day_order as next_event
    from events
    window day_order as (partition by visit_date, iin order by event_datetime, event)

),

intervals as (

    select
        visit_date,
        iin,
        event,
        event_datetime,
        case
            when event = 'exit' and previous_event = 'entry'
                then unix_timestamp(event_datetime) - unix_timestamp(previous_datetime)
            else 0
        end as closed_seconds,
        (event = 'entry' and coalesce(next_event, '') != 'exit')
        or (event = 'exit' and coalesce(previous_event, '') != 'entry') as is_unpaired
    from ordered

),

daily as (

    select
        visit_date,
        iin,
        min(case when event = 'entry' then event_datetime end) as first_entry,
        max(case when event = 'exit' then event_datetime end) as last_exit,
        cast(count_if(event = 'entry') as int) as total_entries,
        cast(count_if(event = 'exit') as int) as total_exits,
        cast(sum(closed_seconds) as decimal(12, 0)) as seconds_on_site,
        bool_or(is_unpaired) as has_unpaired_events
    from intervals
    group by visit_date, iin

),

final as (

    select
        visit_date,
        {{ mask_iin('iin') }} as iin,
        first_entry,
        last_exit,
        total_entries,
        total_exits,
        cast(round(seconds_on_site / 3600, 2) as decimal(5, 2)) as hours_on_site,
        has_unpaired_events,
        cast(year(visit_date) as int) as year
    from daily

)

select * from final

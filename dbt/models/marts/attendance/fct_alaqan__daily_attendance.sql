{{
    config(
        alias='alaqan_daily_attendance',
        partition_by=['year'],
        on_schema_change='fail',
    )
}}
-- gold.alaqan_daily_attendance: one row per person and day. Rebuilt for every calendar year the
-- run's interval touches (the table is partitioned by year). The hours rule is documented in
-- _attendance__models.yml and pinned by its unit tests. Local wall-clock columns are TIMESTAMP_NTZ,
-- the *_utc columns their instants; interval lengths are measured between instants.
with

events as (

    select
        visit_date,
        iin,
        event,
        event_datetime,
        event_at_utc
    from {{ ref('stg_alaqan__visits') }}
    where {{ in_data_interval_years('visit_date') }}

),

ordered as (

    select
        *,
        lag(event) over day_order as previous_event,
        lead(event) over day_order as next_event,
        -- Exits before this event: the entries since the last exit, and the exit that follows them,
        -- share one number, so the first entry of such a run is the one that opened the interval.
        coalesce(
            sum(case when event = 'exit' then 1 else 0 end) over (
                partition by visit_date, iin
                order by event_datetime, event
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as exits_before
    from events
    window day_order as (partition by visit_date, iin order by event_datetime, event)

),

opened as (

    select
        *,
        min(case when event = 'entry' then event_at_utc end) over (
            partition by visit_date, iin, exits_before
        ) as opened_at_utc
    from ordered

),

intervals as (

    select
        visit_date,
        iin,
        event,
        event_datetime,
        event_at_utc,
        case
            when event = 'exit' and previous_event = 'entry'
                then unix_seconds(event_at_utc) - unix_seconds(opened_at_utc)
            else 0
        end as closed_seconds,
        (event = 'entry' and coalesce(next_event, '') != 'exit')
        or (event = 'exit' and coalesce(previous_event, '') != 'entry') as is_unpaired
    from opened

),

daily as (

    select
        visit_date,
        iin,
        min(case when event = 'entry' then event_datetime end) as first_entry,
        max(case when event = 'exit' then event_datetime end) as last_exit,
        min(case when event = 'entry' then event_at_utc end) as first_entry_utc,
        max(case when event = 'exit' then event_at_utc end) as last_exit_utc,
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
        first_entry_utc,
        last_exit_utc,
        total_entries,
        total_exits,
        cast(round(seconds_on_site / 3600, 2) as decimal(5, 2)) as hours_on_site,
        has_unpaired_events,
        cast(year(visit_date) as int) as year
    from daily

)

select * from final

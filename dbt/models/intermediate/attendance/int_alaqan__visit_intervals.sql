-- Each silver event with its neighbours in the day's time order, and the on-site seconds it closes.
-- Rule: events sorted by time; an entry opens an interval and the next event, if it is an exit,
-- closes it. An exit with no open entry and an entry that is never closed add nothing; a second
-- entry before an exit leaves the earlier entry unpaired (the latest entry opens the interval).
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

final as (

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

)

select * from final

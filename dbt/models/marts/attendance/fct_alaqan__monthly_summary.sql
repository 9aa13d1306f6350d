{{
    config(
        alias='alaqan_monthly_summary',
        partition_by=['year'],
        on_schema_change='fail',
    )
}}
-- gold.alaqan_monthly_summary: per person and calendar month, from the daily mart.
with

daily as (

    select * from {{ ref('fct_alaqan__daily_attendance') }}
    where {{ in_data_interval_years('visit_date') }}

),

monthly as (

    select
        year,
        cast(month(visit_date) as int) as month,
        iin,
        cast(count(distinct visit_date) as int) as total_days_visited,
        cast(sum(hours_on_site) as decimal(7, 2)) as total_hours,
        min(visit_date) as first_visit_date,
        max(visit_date) as last_visit_date
    from daily
    group by year, month(visit_date), iin

),

final as (

    select
        year,
        month,
        iin,
        total_days_visited,
        cast(round(total_hours / total_days_visited, 2) as decimal(5, 2)) as avg_hours_per_day,
        total_hours,
        first_visit_date,
        last_visit_date
    from monthly

)

select * from final

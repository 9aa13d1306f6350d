{{
    config(
        alias='amocrm_sales_funnel',
        partition_by=['year'],
    )
}}
-- gold.amocrm_sales_funnel: per cohort (leads created in a local month in a pipeline) and status of that
-- pipeline, how many of the cohort reached the status. The rules are in _sales__models.yml and pinned by
-- its unit tests.
with

leads as (

    select
        lead_id,
        pipeline_id,
        status_id,
        price,
        is_won,
        is_lost,
        year,
        cast(month(created_date) as int) as month
    from {{ ref('int_leads_named') }}
    where not is_deleted and created_date is not null

),

statuses as (

    select
        pipeline_id,
        pipeline_name,
        status_id,
        status_name,
        status_sort,
        is_closed_status
    from {{ ref('stg_amocrm__pipeline_statuses') }}

),

status_changes as (

    select
        entity_id as lead_id,
        status_before_id,
        pipeline_before_id,
        status_after_id,
        pipeline_after_id
    from {{ ref('stg_amocrm__events') }}
    where event_type = 'lead_status_changed'

),

-- Every status a lead was ever in: its current one and both sides of each status change.
statuses_ever_in as (

    select
        lead_id,
        status_id,
        pipeline_id
    from leads
    union all
    select
        lead_id,
        status_before_id as status_id,
        pipeline_before_id as pipeline_id
    from status_changes
    union all
    select
        lead_id,
        status_after_id as status_id,
        pipeline_after_id as pipeline_id
    from status_changes

),

-- The furthest open status (by sort) a lead was ever in within its current pipeline.
furthest_open as (

    select
        leads.lead_id,
        max(statuses.status_sort) as max_open_sort
    from leads
    inner join statuses_ever_in as ever
        on
            leads.lead_id = ever.lead_id
            and (ever.pipeline_id is null or leads.pipeline_id = ever.pipeline_id)
    inner join statuses
        on
            leads.pipeline_id = statuses.pipeline_id
            and ever.status_id = statuses.status_id
    where not statuses.is_closed_status
    group by leads.lead_id

),

cohort_sizes as (

    select
        pipeline_id,
        year,
        month,
        count(*) as cohort_leads
    from leads
    group by pipeline_id, year, month

),

lead_statuses as (

    select
        leads.year,
        leads.month,
        leads.price,
        leads.is_won,
        leads.is_lost,
        statuses.pipeline_id,
        statuses.pipeline_name,
        statuses.status_id,
        statuses.status_name,
        statuses.status_sort,
        case
            when statuses.is_closed_status then leads.status_id = statuses.status_id
            else leads.is_won or coalesce(statuses.status_sort <= furthest_open.max_open_sort, false)
        end as reached
    from leads
    inner join statuses on leads.pipeline_id = statuses.pipeline_id
    left join furthest_open on leads.lead_id = furthest_open.lead_id

),

funnel as (

    select
        year,
        month,
        pipeline_id,
        pipeline_name,
        status_id,
        status_name,
        status_sort,
        count_if(reached) as leads_count,
        sum(case when reached then price end) as total_price,
        count(case when reached then price end) as priced_leads,
        count_if(reached and is_won) as won_count,
        count_if(reached and is_lost) as lost_count
    from lead_statuses
    group by year, month, pipeline_id, pipeline_name, status_id, status_name, status_sort

),

final as (

    select
        funnel.year,
        funnel.month,
        funnel.pipeline_id,
        funnel.pipeline_name,
        funnel.status_id,
        funnel.status_name,
        funnel.status_sort,
        cast(funnel.leads_count as int) as leads_count,
        cast(coalesce(funnel.total_price, 0) as bigint) as total_price,
        cast(round(cast(funnel.total_price as decimal(30, 0)) / nullif(funnel.priced_leads, 0), 0) as bigint)
            as avg_price,
        cast(funnel.won_count as int) as won_count,
        cast(funnel.lost_count as int) as lost_count,
        cast(round(cast(funnel.leads_count as decimal(20, 0)) * 100 / cohort_sizes.cohort_leads, 2) as decimal(5, 2))
            as conversion_rate,
        cast(cohort_sizes.cohort_leads as int) as cohort_leads
    from funnel
    inner join cohort_sizes
        on
            funnel.pipeline_id = cohort_sizes.pipeline_id
            and funnel.year = cohort_sizes.year
            and funnel.month = cohort_sizes.month

)

select * from final

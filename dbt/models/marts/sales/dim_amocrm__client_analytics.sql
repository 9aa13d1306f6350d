{{
    config(
        alias='amocrm_client_analytics',
    )
}}
-- gold.amocrm_client_analytics: one row per live company, with or without leads: its leads' counts,
-- revenue, first/last deal dates, average price and tags. The rules are in _sales__models.yml.
with

companies as (

    select
        company_id,
        company_name,
        bin
    from {{ ref('int_companies_named') }}
    where not is_deleted

),

company_leads as (

    select
        linked.company_id,
        leads.lead_id,
        leads.price,
        leads.is_won,
        leads.is_lost,
        leads.created_date,
        leads.tags
    from {{ ref('int_leads_named') }} as leads
        lateral view explode(leads.company_ids) linked as company_id
    where not leads.is_deleted

),

by_company as (

    select
        company_id,
        count(*) as total_leads,
        count_if(is_won) as won_leads,
        count_if(is_lost) as lost_leads,
        sum(case when is_won then price end) as total_revenue,
        min(created_date) as first_deal_date,
        max(created_date) as last_deal_date,
        sum(price) as price_sum,
        count(price) as priced_leads,
        array_sort(array_distinct(flatten(collect_list(tags)))) as tags
    from company_leads
    group by company_id

),

final as (

    select
        companies.company_id,
        companies.company_name,
        companies.bin,
        cast(coalesce(by_company.total_leads, 0) as int) as total_leads,
        cast(coalesce(by_company.won_leads, 0) as int) as won_leads,
        cast(coalesce(by_company.lost_leads, 0) as int) as lost_leads,
        cast(coalesce(by_company.total_revenue, 0) as bigint) as total_revenue,
        by_company.first_deal_date,
        by_company.last_deal_date,
        cast(round(cast(by_company.price_sum as decimal(30, 0)) / nullif(by_company.priced_leads, 0), 0) as bigint)
            as avg_deal_price,
        nullif(array_join(by_company.tags, ', '), '') as tags
    from companies
    left join by_company on companies.company_id = by_company.company_id

)

select * from final

{{
    config(
        alias='ident_reception_funnel',
    )
}}
-- gold.ident_reception_funnel: per branch and local day of PlanStart, live receptions by current status
-- and by primary (no earlier completed reception of the patient) vs repeat.
with

receptions as (

    select * from {{ ref('int_receptions_enriched') }}
    where not is_deleted and reception_date is not null

),

final as (

    select
        source_db,
        branch_number,
        max(branch_name) as branch_name,
        reception_date,
        count(*) as receptions,
        count_if(status = 'scheduled') as scheduled,
        count_if(status = 'arrived') as arrived,
        count_if(status = 'completed') as completed,
        count_if(status = 'cancelled') as cancelled,
        count_if(is_primary) as primary_receptions,
        count_if(not is_primary) as repeat_receptions,
        count_if(is_primary and status = 'completed') as primary_completed,
        count_if(not is_primary and status = 'completed') as repeat_completed
    from receptions
    group by source_db, branch_number, reception_date

)

select * from final

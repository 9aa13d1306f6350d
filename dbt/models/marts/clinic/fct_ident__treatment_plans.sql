{{
    config(
        alias='ident_treatment_plans',
    )
}}
-- gold.ident_treatment_plans: one row per live treatment plan with its totals, execution state and its
-- lines (stage, element, service, price, discount, total, status) as JSON for the CRM card.
with

plan_lines as (

    select * from {{ ref('int_treatment_plan_lines_joined') }}

),

final as (

    select
        source_db,
        plan_id,
        max(plan_name) as plan_name,
        max(created_at) as created_at,
        max(is_active) as is_active,
        max(patient_id) as patient_id,
        max(patient_full_name) as patient_full_name,
        max(doctor_id) as doctor_id,
        max(doctor_name) as doctor_name,
        count(distinct stage_id) as stages,
        count(plan_line_id) as plan_lines,
        cast(coalesce(sum(price), 0) as decimal(18, 2)) as price,
        cast(coalesce(sum(discount), 0) as decimal(18, 2)) as discount,
        cast(coalesce(sum(total), 0) as decimal(18, 2)) as total,
        count_if(execution_status in ('done', 'paid')) as done_lines,
        count_if(execution_status = 'paid') as paid_lines,
        case
            when count(plan_line_id) = 0 then 'empty'
            when count_if(execution_status = 'paid') = count(plan_line_id) then 'paid'
            when count_if(execution_status in ('done', 'paid')) = count(plan_line_id) then 'done'
            when count_if(execution_status = 'planned') = count(plan_line_id) then 'planned'
            else 'in_progress'
        end as execution_status,
        to_json(array_sort(collect_list(
            case when plan_line_id is not null then struct(
                stage_order, stage_name, element_order, plan_line_id, element_name, service_name,
                price, discount, total, execution_status
            ) end
        ))) as lines_json
    from plan_lines
    group by source_db, plan_id

)

select * from final

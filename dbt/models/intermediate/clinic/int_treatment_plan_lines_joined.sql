{{
    config(
        alias='ident_treatment_plans',
    )
}}
-- silver.ident_treatment_plans: one row per line of a live treatment plan (TreatmentPlanElementRelations)
-- per database: plan → stage → element, the service and its price, the discount, the total, and the
-- execution status from the bills (done: a bill line points to the plan line; paid: that bill is formed).
-- A plan without lines keeps one row with null line columns.
with

plans as (

    select * from {{ ref('stg_ident__treatment_plans') }}
    where not is_deleted

),

plan_lines as (

    select * from {{ ref('stg_ident__treatment_plan_element_relations') }}
    where not is_deleted

),

stages as (

    select * from {{ ref('stg_ident__treatment_plan_stages') }}
    where not is_deleted

),

elements as (

    select * from {{ ref('stg_ident__treatment_plan_elements') }}
    where not is_deleted

),

services as (

    select
        prices.source_db,
        prices.service_price_id,
        prices.price,
        service_items.service_name
    from {{ ref('stg_ident__service_item_prices') }} as prices
    left join {{ ref('stg_ident__service_items') }} as service_items
        on
            prices.source_db = service_items.source_db
            and prices.service_item_id = service_items.service_item_id
            and not service_items.is_deleted
    where not prices.is_deleted

),

executions as (

    select
        lines.source_db,
        lines.plan_line_id,
        max(orders.is_bill_formed) as is_paid
    from {{ ref('stg_ident__order_service_relations') }} as lines
    inner join {{ ref('stg_ident__orders') }} as orders
        on
            lines.source_db = orders.source_db
            and lines.order_id = orders.order_id
    where not lines.is_deleted and not orders.is_deleted and lines.plan_line_id is not null
    group by lines.source_db, lines.plan_line_id

),

final as (

    select
        plans.source_db,
        plans.plan_id,
        plans.plan_name,
        plans.created_at,
        plans.is_active,
        plans.patient_id,
        patients.full_name as patient_full_name,
        plans.doctor_id,
        staff.full_name as doctor_name,
        plan_lines.plan_line_id,
        plan_lines.stage_id,
        stages.stage_name,
        stages.stage_order,
        plan_lines.element_id,
        elements.element_name,
        elements.element_order,
        plan_lines.service_price_id,
        services.service_name,
        cast(coalesce(services.price, elements.price) as decimal(18, 2)) as price,
        cast(coalesce(plan_lines.discount_sum, 0) as decimal(18, 2)) as discount,
        cast(
            coalesce(services.price, elements.price) - coalesce(plan_lines.discount_sum, 0) as decimal(18, 2)
        ) as total,
        case
            when plan_lines.plan_line_id is null then null
            when executions.is_paid then 'paid'
            when executions.plan_line_id is not null then 'done'
            else 'planned'
        end as execution_status
    from plans
    left join plan_lines
        on
            plans.source_db = plan_lines.source_db
            and plans.plan_id = plan_lines.plan_id
    left join stages
        on
            plan_lines.source_db = stages.source_db
            and plan_lines.stage_id = stages.stage_id
    left join elements
        on
            plan_lines.source_db = elements.source_db
            and plan_lines.element_id = elements.element_id
    left join services
        on
            plan_lines.source_db = services.source_db
            and plan_lines.service_price_id = services.service_price_id
    left join executions
        on
            plan_lines.source_db = executions.source_db
            and plan_lines.plan_line_id = executions.plan_line_id
    left join {{ ref('int_patients_joined_to_persons') }} as patients
        on
            plans.source_db = patients.source_db
            and plans.patient_id = patients.patient_id
    left join {{ ref('int_staff_joined_to_professions') }} as staff
        on
            plans.source_db = staff.source_db
            and plans.doctor_id = staff.staff_id

)

select * from final

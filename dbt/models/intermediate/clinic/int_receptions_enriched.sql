{{
    config(
        alias='ident_receptions',
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['source_db', 'reception_id'],
        on_schema_change='fail',
        tblproperties=ident_merge_on_read(),
    )
}}
-- silver.ident_receptions: one row per reception per database (deleted ones too, flagged) with what both
-- CRMs receive: patient, plan times, branch, chair, doctor, services and amount of its bill, status and
-- the patient's earlier completed receptions. The rules are in _int_clinic__models.yml, pinned by its
-- unit tests. Incremental: every reception of a patient with an input loaded after the table's latest
-- inputs_loaded_at is recomputed and merged (the history of a patient depends on all their receptions).
with

{% if is_incremental() %}
    {% set mark = ident_high_water_mark('inputs_loaded_at') %}

    changed_bills as (

        select
            source_db,
            reception_id
        from {{ ref('stg_ident__orders') }}
        where loaded_at > {{ mark }}
        union
        select
            orders.source_db,
            orders.reception_id
        from {{ ref('stg_ident__orders') }} as orders
        inner join {{ ref('stg_ident__order_service_relations') }} as lines
            on
                orders.source_db = lines.source_db
                and orders.order_id = lines.order_id
        where lines.loaded_at > {{ mark }}

    ),

    -- Patients to recompute: of a reception, patient (person) or bill loaded after the mark, and the
    -- patient this table had for a changed reception (a reception moved to another patient changes both
    -- histories).
    affected_patients as (

        select
            source_db,
            patient_id
        from {{ ref('stg_ident__receptions') }}
        where loaded_at > {{ mark }}
        union
        select
            previous.source_db,
            previous.patient_id
        from {{ this }} as previous
        inner join {{ ref('stg_ident__receptions') }} as changed
            on
                previous.source_db = changed.source_db
                and previous.reception_id = changed.reception_id
                and changed.loaded_at > {{ mark }}
        union
        select
            source_db,
            patient_id
        from {{ ref('int_patients_joined_to_persons') }}
        where loaded_at > {{ mark }}
        union
        select
            billed.source_db,
            billed.patient_id
        from {{ ref('stg_ident__receptions') }} as billed
        {{ ident_if_incremental_only('billed', 'changed_bills') }}

    ),
{% endif %}

receptions as (

    select receptions.*
    from {{ ref('stg_ident__receptions') }} as receptions
    {{ ident_if_incremental_only(
        'receptions', 'affected_patients', ['source_db', 'patient_id'], null_safe=['patient_id']
    ) }}

),

branch_map as (

    {{ ident_branch_map() }}

),

armchairs as (

    select * from {{ ref('stg_ident__armchairs') }}
    where not is_deleted

),

own_companies as (

    select * from {{ ref('stg_ident__own_companies') }}
    where not is_deleted

),

cancel_reasons as (

    select * from {{ ref('stg_ident__reception_cancel_reasons') }}
    where not is_deleted

),

-- Bill lines of live bills: Orders → OrderServiceRelation → ServiceItemPrices → ServiceItems.
bill_lines as (

    select
        orders.source_db,
        orders.reception_id,
        lines.order_line_id,
        service_items.service_name,
        lines.count_service * prices.price - coalesce(lines.discount_sum, 0) as line_amount
    from {{ ref('stg_ident__orders') }} as orders
    inner join {{ ref('stg_ident__order_service_relations') }} as lines
        on
            orders.source_db = lines.source_db
            and orders.order_id = lines.order_id
    left join {{ ref('stg_ident__service_item_prices') }} as prices
        on
            lines.source_db = prices.source_db
            and lines.service_price_id = prices.service_price_id
            and not prices.is_deleted
    left join {{ ref('stg_ident__service_items') }} as service_items
        on
            prices.source_db = service_items.source_db
            and prices.service_item_id = service_items.service_item_id
            and not service_items.is_deleted
    {{ ident_if_incremental_only('orders', 'receptions') }}
    where not orders.is_deleted and not lines.is_deleted and orders.reception_id is not null

),

-- The latest load of each reception's bill rows, deleted ones included (a removed line changes the bill).
bill_loads as (

    select
        orders.source_db,
        orders.reception_id,
        max(greatest(orders.loaded_at, lines.loaded_at)) as loaded_at
    from {{ ref('stg_ident__orders') }} as orders
    left join {{ ref('stg_ident__order_service_relations') }} as lines
        on
            orders.source_db = lines.source_db
            and orders.order_id = lines.order_id
    {{ ident_if_incremental_only('orders', 'receptions') }}
    where orders.reception_id is not null
    group by orders.source_db, orders.reception_id

),

bills as (

    select
        source_db,
        reception_id,
        -- Names in line order, ", "-joined, cut at the CRM field's 3,000 characters (no ellipsis).
        nullif(left(array_join(
            transform(
                array_sort(collect_list(struct(order_line_id, nullif(trim(service_name), '') as service_name))),
                line -> line.service_name
            ),
            ', '
        ), 3000), '') as services,
        cast(sum(line_amount) as decimal(18, 2)) as amount
    from bill_lines
    group by source_db, reception_id

),

statused as (

    select
        *,
        case
            when cancelled_at is not null or cancel_reason_id is not null then 'cancelled'
            when ended_at is not null or check_issued_at is not null then 'completed'
            when started_at is not null or patient_appeared_at is not null then 'arrived'
            else 'scheduled'
        end as status
    from receptions

),

-- Completed receptions of the same patient (a person of the same database) with an earlier PlanStart:
-- all of them up to this PlanStart, less those at exactly this PlanStart.
history as (

    select
        source_db,
        reception_id,
        cast(
            coalesce(sum(completed) over (
                partition by source_db, patient_id order by plan_start
                range between unbounded preceding and current row
            ), 0)
            - coalesce(sum(completed) over (partition by source_db, patient_id, plan_start), 0)
            as int
        ) as completed_receptions_before,
        max(loaded_at) over (partition by source_db, patient_id) as patient_receptions_loaded_at
    from (
        select
            source_db,
            reception_id,
            patient_id,
            plan_start,
            loaded_at,
            case when status = 'completed' and not is_deleted then 1 else 0 end as completed
        from statused
    ) as flagged

),

final as (

    select
        statused.source_db,
        statused.reception_id,
        branch_map.branch_number,
        armchairs.own_company_id,
        own_companies.own_company_name as branch_name,
        statused.patient_id,
        patients.full_name as patient_full_name,
        patients.phone as patient_phone,
        coalesce(patients.phone_invalid, false) as phone_invalid,
        patients.card_number,
        statused.plan_start,
        statused.plan_end,
        {{ ident_iso8601('statused.plan_start', 'statused.source_db') }} as plan_start_iso,
        {{ ident_iso8601('statused.plan_end', 'statused.source_db') }} as plan_end_iso,
        to_date(statused.plan_start) as reception_date,
        statused.armchair_id,
        armchairs.armchair_name,
        statused.doctor_id,
        staff.full_name as doctor_name,
        staff.speciality as doctor_speciality,
        bills.services,
        bills.amount,
        statused.status,
        statused.cancel_reason_id,
        cancel_reasons.cancel_reason_name,
        nullif(trim(statused.cancel_reason_comment), '') as cancel_reason_comment,
        nullif(trim(statused.comment), '') as comment,
        statused.booked_at,
        statused.patient_appeared_at,
        statused.started_at,
        statused.ended_at,
        statused.check_issued_at,
        statused.cancelled_at,
        statused.added_at,
        statused.changed_at,
        history.completed_receptions_before,
        history.completed_receptions_before = 0 as is_primary,
        statused.is_deleted,
        statused.loaded_at,
        -- The latest bronze load among what the row is computed from (the patient's receptions, the
        -- patient and person, the bill): the high-water mark of the incremental models downstream.
        greatest(history.patient_receptions_loaded_at, patients.loaded_at, bill_loads.loaded_at)
            as inputs_loaded_at
    from statused
    inner join history
        on
            statused.source_db = history.source_db
            and statused.reception_id = history.reception_id
    left join {{ ref('int_patients_joined_to_persons') }} as patients
        on
            statused.source_db = patients.source_db
            and statused.patient_id = patients.patient_id
    left join {{ ref('int_staff_joined_to_professions') }} as staff
        on
            statused.source_db = staff.source_db
            and statused.doctor_id = staff.staff_id
    left join armchairs
        on
            statused.source_db = armchairs.source_db
            and statused.armchair_id = armchairs.armchair_id
    left join own_companies
        on
            armchairs.source_db = own_companies.source_db
            and armchairs.own_company_id = own_companies.own_company_id
    left join branch_map
        on
            armchairs.source_db = branch_map.source_db
            and armchairs.own_company_id = branch_map.own_company_id
    left join cancel_reasons
        on
            statused.source_db = cancel_reasons.source_db
            and statused.cancel_reason_id = cancel_reasons.cancel_reason_id
    left join bills
        on
            statused.source_db = bills.source_db
            and statused.reception_id = bills.reception_id
    left join bill_loads
        on
            statused.source_db = bill_loads.source_db
            and statused.reception_id = bill_loads.reception_id

)

select * from final

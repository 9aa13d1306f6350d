{{
    config(
        alias='ident_doctor_load',
    )
}}
-- gold.ident_doctor_load: per doctor (of a database) and local day of PlanStart, the minutes booked by
-- live non-cancelled receptions, the completed receptions and their revenue (bill amounts).
with

receptions as (

    select * from {{ ref('int_receptions_enriched') }}
    where not is_deleted and doctor_id is not null and reception_date is not null

),

final as (

    select
        source_db,
        doctor_id,
        max(doctor_name) as doctor_name,
        max(doctor_speciality) as doctor_speciality,
        reception_date as work_date,
        count_if(status != 'cancelled') as booked_receptions,
        cast(coalesce(sum(
            case when status != 'cancelled' then greatest(timestampdiff(minute, plan_start, plan_end), 0) end
        ), 0) as int) as booked_minutes,
        count_if(status = 'completed') as completed_receptions,
        cast(coalesce(sum(case when status = 'completed' then amount end), 0) as decimal(18, 2)) as revenue
    from receptions
    group by source_db, doctor_id, reception_date

)

select * from final

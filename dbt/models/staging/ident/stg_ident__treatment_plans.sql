{{
    config(
        alias='ident_treatment_plans_latest',
    )
}}
-- silver.ident_treatment_plans_latest: the latest version of every treatment plan per database, renamed; a
-- key whose latest version is a tombstone is kept with is_deleted = true (macro ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('treatment_plans') }}

),

renamed as (

    select
        source_db,
        id as plan_id,
        id_patients as patient_id,
        id_staffs as doctor_id,
        id_staffs_created as created_by_staff_id,
        name as plan_name,
        is_active,
        date_time_created as created_at,
        actual_from,
        actual_to,
        date_time_changed as changed_at,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

{{
    config(
        alias='ident_receptions_latest',
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['source_db', 'reception_id'],
        on_schema_change='fail',
        tblproperties=ident_merge_on_read(),
    )
}}
-- silver.ident_receptions_latest: the latest version of every reception (visit) per database, renamed; a
-- key whose latest version is a tombstone is kept with is_deleted = true (macro ident_latest_versions).
-- Incremental (the micro-batch's fast path): only receptions with a version loaded after the table's
-- latest `loaded_at` are merged.
with

latest as (

    {{ ident_latest_versions(
        'receptions', loaded_after=ident_high_water_mark('loaded_at') if is_incremental() else none
    ) }}

),

renamed as (

    select
        source_db,
        id as reception_id,
        id_patients as patient_id,
        id_staffs as doctor_id,
        id_armchairs as armchair_id,
        id_reception_cancel_reasons as cancel_reason_id,
        id_receptions_transfer_from as transferred_from_id,
        id_staffs_reception_added as booked_by_staff_id,
        id_staffs_reception_canceled as cancelled_by_staff_id,
        comment,
        cancel_reason_comment,
        row_version,
        plan_start,
        plan_end,
        reception_added as booked_at,
        patient_appeared as patient_appeared_at,
        reception_started as started_at,
        reception_ended as ended_at,
        check_issued as check_issued_at,
        reception_canceled as cancelled_at,
        date_time_added as added_at,
        date_time_changed as changed_at,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

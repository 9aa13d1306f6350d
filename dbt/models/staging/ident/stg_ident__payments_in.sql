{{
    config(
        alias='ident_payments_in_latest',
    )
}}
-- silver.ident_payments_in_latest: the latest version of every incoming payment per database, renamed; a
-- key whose latest version is a tombstone is kept with is_deleted = true (macro ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('payments_in') }}

),

renamed as (

    select
        source_db,
        id as payment_id,
        id_patients as patient_id,
        id_staffs as staff_id,
        id_own_companies as own_company_id,
        payment as amount,
        date_time_payment as paid_at,
        date_payment as payment_date,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

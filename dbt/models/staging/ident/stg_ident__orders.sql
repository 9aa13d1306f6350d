{{
    config(
        alias='ident_orders_latest',
    )
}}
-- silver.ident_orders_latest: the latest version of every bill (Orders) per database, renamed; a key whose
-- latest version is a tombstone is kept with is_deleted = true (macro ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('orders') }}

),

renamed as (

    select
        source_db,
        id as order_id,
        id_receptions as reception_id,
        id_patients as patient_id,
        id_staffs as doctor_id,
        id_own_companies as own_company_id,
        date_time_order as ordered_at,
        date_time_bill_formed as bill_formed_at,
        coalesce(is_bill_formed, false) or date_time_bill_formed is not null as is_bill_formed,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

{{
    config(
        alias='ident_reception_cancel_reasons_latest',
    )
}}
-- silver.ident_reception_cancel_reasons_latest: the latest version of every cancel reason per database,
-- renamed; a key whose latest version is a tombstone is kept with is_deleted = true (macro
-- ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('reception_cancel_reasons') }}

),

renamed as (

    select
        source_db,
        id as cancel_reason_id,
        name as cancel_reason_name,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

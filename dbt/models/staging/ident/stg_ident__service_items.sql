{{
    config(
        alias='ident_service_items_latest',
    )
}}
-- silver.ident_service_items_latest: the latest version of every service of the price list per database,
-- renamed; a key whose latest version is a tombstone is kept with is_deleted = true (macro
-- ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('service_items') }}

),

renamed as (

    select
        source_db,
        id as service_item_id,
        name as service_name,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

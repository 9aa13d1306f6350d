{{
    config(
        alias='ident_service_item_prices_latest',
    )
}}
-- silver.ident_service_item_prices_latest: the latest version of every service price per database, renamed;
-- a key whose latest version is a tombstone is kept with is_deleted = true (macro ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('service_item_prices') }}

),

renamed as (

    select
        source_db,
        id as service_price_id,
        id_service_items as service_item_id,
        price,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

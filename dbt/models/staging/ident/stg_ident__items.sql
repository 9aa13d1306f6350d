{{
    config(
        alias='ident_items_latest',
    )
}}
-- silver.ident_items_latest: the latest version of every staff member's profession (Items) per database,
-- renamed; a key whose latest version is a tombstone is kept with is_deleted = true (macro
-- ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('items', ['id_staffs', 'id_profession_names']) }}

),

renamed as (

    select
        source_db,
        id_staffs as staff_id,
        id_profession_names as profession_id,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

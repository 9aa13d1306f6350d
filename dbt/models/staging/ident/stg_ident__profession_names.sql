{{
    config(
        alias='ident_profession_names_latest',
    )
}}
-- silver.ident_profession_names_latest: the latest version of every profession (speciality) per database,
-- renamed; a key whose latest version is a tombstone is kept with is_deleted = true (macro
-- ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('profession_names') }}

),

renamed as (

    select
        source_db,
        id as profession_id,
        name_profession as profession_name,
        id_roles as role_id,
        coalesce(archive, false) as is_archived,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

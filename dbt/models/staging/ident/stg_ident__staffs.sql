{{
    config(
        alias='ident_staffs_latest',
    )
}}
-- silver.ident_staffs_latest: the latest version of every staff member (Staffs.ID_Persons = Persons.ID) per
-- database, renamed; a key whose latest version is a tombstone is kept with is_deleted = true (macro
-- ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('staffs', ['id_persons']) }}

),

renamed as (

    select
        source_db,
        id_persons as staff_id,
        coalesce(archive, false) as is_archived,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

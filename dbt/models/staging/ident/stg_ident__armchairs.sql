{{
    config(
        alias='ident_armchairs_latest',
    )
}}
-- silver.ident_armchairs_latest: the latest version of every chair (cabinet) per database, renamed; a key
-- whose latest version is a tombstone is kept with is_deleted = true (macro ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('armchairs') }}

),

renamed as (

    select
        source_db,
        id as armchair_id,
        name_armchair as armchair_name,
        id_own_companies as own_company_id,
        coalesce(archive, false) as is_archived,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

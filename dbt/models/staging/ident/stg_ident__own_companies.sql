{{
    config(
        alias='ident_own_companies_latest',
    )
}}
-- silver.ident_own_companies_latest: the latest version of every OwnCompanies row (a branch's legal unit)
-- per database, renamed; a key whose latest version is a tombstone is kept with is_deleted = true (macro
-- ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('own_companies') }}

),

renamed as (

    select
        source_db,
        id as own_company_id,
        name as own_company_name,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

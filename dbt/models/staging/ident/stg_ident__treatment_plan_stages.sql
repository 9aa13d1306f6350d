{{
    config(
        alias='ident_treatment_plan_stages_latest',
    )
}}
-- silver.ident_treatment_plan_stages_latest: the latest version of every treatment plan stage per database,
-- renamed; a key whose latest version is a tombstone is kept with is_deleted = true (macro
-- ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('treatment_plan_stages') }}

),

renamed as (

    select
        source_db,
        id as stage_id,
        name as stage_name,
        `order` as stage_order,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

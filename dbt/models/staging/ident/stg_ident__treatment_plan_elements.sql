{{
    config(
        alias='ident_treatment_plan_elements_latest',
    )
}}
-- silver.ident_treatment_plan_elements_latest: the latest version of every element of the treatment plan
-- catalogue (a tree) per database, renamed; a key whose latest version is a tombstone is kept with
-- is_deleted = true (macro ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('treatment_plan_elements') }}

),

renamed as (

    select
        source_db,
        id as element_id,
        id_treatment_plan_elements_parent as parent_element_id,
        name as element_name,
        coalesce(is_archive, false) as is_archived,
        `order` as element_order,
        price,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

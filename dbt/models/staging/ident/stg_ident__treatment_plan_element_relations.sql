{{
    config(
        alias='ident_treatment_plan_element_relations_latest',
    )
}}
-- silver.ident_treatment_plan_element_relations_latest: the latest version of every treatment plan line
-- (TreatmentPlanElementRelations) per database, renamed; a key whose latest version is a tombstone is kept
-- with is_deleted = true (macro ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('treatment_plan_element_relations') }}

),

renamed as (

    select
        source_db,
        id as plan_line_id,
        id_treatment_plans as plan_id,
        id_treatment_plan_stages as stage_id,
        id_treatment_plan_elements as element_id,
        id_service_prices as service_price_id,
        teeth_long as teeth_mask,
        discount_sum,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

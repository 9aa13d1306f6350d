{{
    config(
        alias='ident_order_service_relations_latest',
    )
}}
-- silver.ident_order_service_relations_latest: the latest version of every bill line (OrderServiceRelation)
-- per database, renamed; a key whose latest version is a tombstone is kept with is_deleted = true (macro
-- ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('order_service_relation') }}

),

renamed as (

    select
        source_db,
        id as order_line_id,
        id_orders as order_id,
        id_treatment_plans as plan_id,
        id_treatment_plan_element_relations as plan_line_id,
        id_service_prices as service_price_id,
        count_service,
        discount_sum,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

{{
    config(
        alias='onec_categories',
        materialized='table',
    )
}}
-- silver.onec_categories: the current product-category tree (Классификатор/Группы), one row per group.
-- Groups left out of a full export are kept, inactive.
with

latest as (

    select * from ({{ onec_latest('groups', 'e.id', packages=onec_bronze_packages()) }}) as state

),

final as (

    select
        id as category_id,
        parent_id,
        name,
        path as category_path,
        from_json(path_ids, 'array<string>') as path_ids,
        element_at(split(path, ' / '), 1) as top_category,
        depth,
        description,
        coalesce(deleted, false) as is_deleted,
        is_stale,
        not coalesce(deleted, false) and not is_stale as is_active,
        package_id,
        exchange_at as updated_at
    from latest

)

select * from final

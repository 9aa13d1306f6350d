{{
    config(
        alias='onec_packages',
        materialized='table',
    )
}}
-- silver.onec_packages: the 1C packages that reached bronze, in exchange order (`package_seq`, 1 = oldest).
-- Order: 1C's ДатаФормирования (`generated_at`, the latest of the package's files), then first arrival,
-- so a replay keeps its place; a package without a date sorts by arrival. `is_full`: a full export —
-- what it leaves out of an entity it carries is stale (see macros/onec_state.sql, which defines the order).
with

loaded as (

    select * from ({{ onec_packages_in_exchange_order(source('onec', 'onec_packages')) }}) as ordered

),

final as (

    select
        package_id,
        package_name,
        load_mode,
        coalesce(is_full, false) as is_full,
        contains_only_changes,
        schema_version,
        exchange_at,
        cast(generated_at as timestamp) as generated_at,
        cast(first_seen_at as timestamp) as first_seen_at,
        cast(finished_at as timestamp) as loaded_at,
        package_seq,
        file_count,
        total_bytes,
        entity_counts as entity_counts_json,
        flagged_rows
    from loaded

)

select * from final

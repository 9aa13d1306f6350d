{{
    config(
        alias='alaqan_rejected',
        partition_by=['visit_date'],
        on_schema_change='fail',
    )
}}
-- silver.alaqan_rejected: every Alaqan record a layer refused, in one place — the bronze quarantine
-- (written by the extractor) and the silver quarantine (dbt validation), with one reason vocabulary
-- (macros/alaqan_rejected.sql; documented in _alaqan__models.yml). A table, not a view: the embedded
-- Iceberg JDBC catalog (schema V0) has no views, and the platform counts rows from table snapshots.
with

bronze as (

    select
        visit_date,
        'bronze' as layer,
        {{ alaqan_reject_reason('reason') }} as reason,
        reason as original_reason,
        iin,
        raw_json,
        _run_id as run_id,
        _source_uri as source_uri,
        loaded_at
    from {{ source('alaqan', 'alaqan_visits_quarantine') }}
    where {{ in_data_interval('visit_date') }}

),

silver as (

    select
        visit_date,
        'silver' as layer,
        {{ alaqan_reject_reason('reason') }} as reason,
        reason as original_reason,
        iin,
        raw_json,
        run_id,
        source_uri,
        loaded_at
    from {{ ref('stg_alaqan__rejected_visits') }}
    where {{ in_data_interval('visit_date') }}

),

final as (

    select * from bronze
    union all
    select * from silver

)

select * from final

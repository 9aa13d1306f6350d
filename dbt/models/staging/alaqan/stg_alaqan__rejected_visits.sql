{{
    config(
        alias='alaqan_visits_quarantine',
        partition_by=['visit_date'],
        on_schema_change='fail',
    )
}}
-- silver.alaqan_visits_quarantine: bronze events that failed silver validation, with the reason
-- (silver's own codes; silver.alaqan_rejected maps them onto the shared vocabulary).
select
    visit_date,
    iin,
    event,
    event_time,
    raw_json,
    rejection_reason as reason,
    run_id,
    source_uri,
    loaded_at
from ({{ alaqan_validated_visits(source('alaqan', 'alaqan_visits')) }}) as checked
where rejection_reason is not null

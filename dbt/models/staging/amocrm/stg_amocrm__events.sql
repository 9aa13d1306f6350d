{{
    config(
        alias='amocrm_events',
    )
}}
-- silver.amocrm_events: the event log, one row per event id (the last load wins), typed; for
-- lead_status_changed the status and pipeline before and after are parsed out of value_before/value_after
-- ([{"lead_status": {"id", "pipeline_id"}}]).
with

deduplicated as (

    select *
    from (
        select
            *,
            row_number() over (partition by id order by _loaded_at desc) as recency
        from {{ source('amocrm', 'amocrm_events') }}
    ) as loads
    where recency = 1

),

parsed as (

    select
        *,
        try_element_at(filter(
            from_json(value_before, 'array<struct<lead_status:struct<id:bigint,pipeline_id:bigint>>>'),
            v -> v.lead_status is not null
        ), 1).lead_status as status_before,
        try_element_at(filter(
            from_json(value_after, 'array<struct<lead_status:struct<id:bigint,pipeline_id:bigint>>>'),
            v -> v.lead_status is not null
        ), 1).lead_status as status_after
    from deduplicated

),

final as (

    select
        parsed.id as event_id,
        parsed.type as event_type,
        parsed.entity_id,
        parsed.entity_type,
        parsed.created_by,
        {{ amocrm_timestamp('created_at') }} as created_at,
        case when parsed.type = 'lead_status_changed' then status_before.id end as status_before_id,
        case when parsed.type = 'lead_status_changed' then status_before.pipeline_id end as pipeline_before_id,
        case when parsed.type = 'lead_status_changed' then status_after.id end as status_after_id,
        case when parsed.type = 'lead_status_changed' then status_after.pipeline_id end as pipeline_after_id,
        parsed.value_before,
        parsed.value_after,
        parsed.account_id,
        parsed._loaded_at as loaded_at
    from parsed

)

select * from final

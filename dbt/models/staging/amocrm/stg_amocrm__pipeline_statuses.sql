{{
    config(
        alias='amocrm_pipeline_statuses',
    )
}}
-- silver.amocrm_pipeline_statuses: the pipelines of the latest snapshot, one row per (pipeline, status).
-- The system statuses 142 (won) and 143 (lost) appear in every pipeline with the same ids.
with

pipelines as (

    {{ amocrm_latest_snapshot('amocrm_pipelines') }}

),

statuses as (

    select
        pipelines.id as pipeline_id,
        pipelines.name as pipeline_name,
        pipelines.sort as pipeline_sort,
        coalesce(pipelines.is_main, false) as is_main_pipeline,
        coalesce(pipelines.is_archive, false) as is_archive_pipeline,
        status.id as status_id,
        status.name as status_name,
        status.sort as status_sort,
        status.color as status_color,
        status.type as status_type,
        pipelines._loaded_at as loaded_at
    from pipelines
        lateral view explode(
            from_json(
                statuses_json,
                'array<struct<id:bigint,name:string,sort:bigint,color:string,type:bigint,pipeline_id:bigint>>'
            )
        ) exploded as status

),

final as (

    select
        pipeline_id,
        pipeline_name,
        pipeline_sort,
        is_main_pipeline,
        is_archive_pipeline,
        status_id,
        status_name,
        status_sort,
        status_color,
        status_type,
        status_id in ({{ amocrm_won_status() }}, {{ amocrm_lost_status() }}) as is_closed_status,
        loaded_at
    from statuses
    where status_id is not null

)

select * from final

{{
    config(
        alias='amocrm_tasks',
    )
}}
-- silver.amocrm_tasks: the latest version of every task, typed.
with

versions as (

    {{ amocrm_ranked_versions('amocrm_tasks') }}

),

final as (

    select
        id as task_id,
        text as task_text,
        responsible_user_id,
        entity_id,
        entity_type,
        coalesce(is_completed, false) as is_completed,
        task_type_id,
        {{ amocrm_timestamp('complete_till') }} as complete_till,
        result_text,
        {{ amocrm_timestamp('created_at') }} as created_at,
        {{ amocrm_timestamp('updated_at') }} as updated_at,
        _loaded_at as loaded_at
    from versions
    where recency = 1

)

select * from final

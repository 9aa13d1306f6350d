{{
    config(
        alias='amocrm_manager_activity',
        partition_by=['year'],
    )
}}
-- gold.amocrm_manager_activity: per local month and responsible user with any activity — leads created,
-- closed won/lost, revenue, completed tasks, average deal cycle. The rules are in _sales__models.yml.
with

leads as (

    select * from {{ ref('int_leads_named') }}
    where not is_deleted

),

created as (

    select
        year,
        cast(month(created_date) as int) as month,
        responsible_user_id,
        count(*) as leads_created
    from leads
    where created_date is not null
    group by year, month(created_date), responsible_user_id

),

closed_leads as (

    select
        *,
        {{ amocrm_local_date('closed_at') }} as closed_date
    from leads
    where closed_at is not null and (is_won or is_lost)

),

closed as (

    select
        cast(year(closed_date) as int) as year,
        cast(month(closed_date) as int) as month,
        responsible_user_id,
        count_if(is_won) as leads_closed_won,
        count_if(is_lost) as leads_closed_lost,
        sum(case when is_won then price end) as total_revenue,
        sum(unix_seconds(closed_at) - unix_seconds(created_at)) as cycle_seconds,
        count(created_at) as cycle_leads
    from closed_leads
    group by year(closed_date), month(closed_date), responsible_user_id

),

tasks as (

    select
        year(updated_date) as year,
        month(updated_date) as month,
        responsible_user_id,
        count(*) as tasks_completed
    from (
        select
            responsible_user_id,
            {{ amocrm_local_date('updated_at') }} as updated_date
        from {{ ref('stg_amocrm__tasks') }}
        where is_completed and updated_at is not null
    ) as completed
    group by year(updated_date), month(updated_date), responsible_user_id

),

activity_keys as (

    select
        year,
        month,
        responsible_user_id
    from created
    union
    select
        year,
        month,
        responsible_user_id
    from closed
    union
    select
        year,
        month,
        responsible_user_id
    from tasks

),

users as (

    select
        user_id,
        user_name
    from {{ ref('stg_amocrm__users') }}

),

final as (

    select
        cast(activity_keys.year as int) as year,
        cast(activity_keys.month as int) as month,
        activity_keys.responsible_user_id,
        users.user_name as responsible_user_name,
        cast(coalesce(created.leads_created, 0) as int) as leads_created,
        cast(coalesce(closed.leads_closed_won, 0) as int) as leads_closed_won,
        cast(coalesce(closed.leads_closed_lost, 0) as int) as leads_closed_lost,
        cast(coalesce(closed.total_revenue, 0) as bigint) as total_revenue,
        cast(coalesce(tasks.tasks_completed, 0) as int) as tasks_completed,
        cast(round(cast(closed.cycle_seconds as decimal(30, 0)) / (nullif(closed.cycle_leads, 0) * 86400), 0) as int)
            as avg_deal_cycle_days
    from activity_keys
    left join created
        on
            activity_keys.year = created.year
            and activity_keys.month = created.month
            and activity_keys.responsible_user_id <=> created.responsible_user_id
    left join closed
        on
            activity_keys.year = closed.year
            and activity_keys.month = closed.month
            and activity_keys.responsible_user_id <=> closed.responsible_user_id
    left join tasks
        on
            activity_keys.year = tasks.year
            and activity_keys.month = tasks.month
            and activity_keys.responsible_user_id <=> tasks.responsible_user_id
    left join users on activity_keys.responsible_user_id = users.user_id

)

select * from final

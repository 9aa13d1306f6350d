{{
    config(
        alias='amocrm_leads',
        partition_by=['year'],
    )
}}
-- silver.amocrm_leads: every lead's latest version with the names of its responsible user, pipeline and
-- status. A lead whose user, pipeline or status is unknown is kept with a null name (counted by warn-level
-- tests in _int_sales__models.yml), never dropped.
with

leads as (

    select * from {{ ref('stg_amocrm__leads') }}

),

users as (

    select
        user_id,
        user_name
    from {{ ref('stg_amocrm__users') }}

),

statuses as (

    select
        pipeline_id,
        pipeline_name,
        status_id,
        status_name
    from {{ ref('stg_amocrm__pipeline_statuses') }}

),

pipelines as (

    select distinct
        pipeline_id,
        pipeline_name
    from statuses

),

final as (

    select
        leads.lead_id,
        leads.lead_name,
        leads.price,
        leads.responsible_user_id,
        users.user_name as responsible_user_name,
        leads.status_id,
        statuses.status_name,
        leads.pipeline_id,
        pipelines.pipeline_name,
        coalesce(leads.status_id = {{ amocrm_won_status() }}, false) as is_won,
        coalesce(leads.status_id = {{ amocrm_lost_status() }}, false) as is_lost,
        leads.loss_reason_id,
        leads.loss_reason,
        leads.created_at,
        leads.updated_at,
        leads.closed_at,
        leads.is_deleted,
        leads.deleted_at,
        leads.cf_bin,
        leads.cf_source,
        leads.contact_ids,
        leads.company_ids,
        leads.tags,
        leads.created_date,
        leads.year
    from leads
    left join users on leads.responsible_user_id = users.user_id
    left join pipelines on leads.pipeline_id = pipelines.pipeline_id
    left join statuses
        on
            leads.pipeline_id = statuses.pipeline_id
            and leads.status_id = statuses.status_id

)

select * from final

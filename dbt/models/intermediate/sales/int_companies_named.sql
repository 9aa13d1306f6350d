{{
    config(
        alias='amocrm_companies',
    )
}}
-- silver.amocrm_companies: every company's latest version with the responsible user's name; an unknown
-- user leaves the name null.
with

companies as (

    select * from {{ ref('stg_amocrm__companies') }}

),

users as (

    select
        user_id,
        user_name
    from {{ ref('stg_amocrm__users') }}

),

final as (

    select
        companies.company_id,
        companies.company_name,
        companies.responsible_user_id,
        users.user_name as responsible_user_name,
        companies.bin,
        companies.industry,
        companies.created_at,
        companies.updated_at,
        companies.is_deleted,
        companies.deleted_at,
        companies.contact_ids,
        companies.lead_ids
    from companies
    left join users on companies.responsible_user_id = users.user_id

)

select * from final

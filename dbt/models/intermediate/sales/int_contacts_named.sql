{{
    config(
        alias='amocrm_contacts',
        tags=['amocrm'],
    )
}}
-- No mart reads contacts: the source tag puts the model in the domain's silver step
-- (`tag:amocrm,tag:silver`), which otherwise selects only what the marts need.
-- silver.amocrm_contacts: every contact's latest version (phone and e-mail normalised and masked in
-- staging) with the responsible user's name; an unknown user leaves the name null.
with

contacts as (

    select * from {{ ref('stg_amocrm__contacts') }}

),

users as (

    select
        user_id,
        user_name
    from {{ ref('stg_amocrm__users') }}

),

final as (

    select
        contacts.contact_id,
        contacts.full_name,
        contacts.first_name,
        contacts.last_name,
        contacts.responsible_user_id,
        users.user_name as responsible_user_name,
        contacts.phone,
        contacts.phone_invalid,
        contacts.email,
        contacts.created_at,
        contacts.updated_at,
        contacts.is_deleted,
        contacts.deleted_at,
        contacts.company_ids,
        contacts.lead_ids
    from contacts
    left join users on contacts.responsible_user_id = users.user_id

)

select * from final

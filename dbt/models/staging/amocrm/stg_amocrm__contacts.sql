{{
    config(
        alias='amocrm_contacts_latest',
    )
}}
-- silver.amocrm_contacts_latest: the latest version of every contact, typed, with its deletion state and
-- its phone and e-mail normalised, then masked per the platform setting (personal data never lands in
-- silver in clear unless masking is `clear`). silver.amocrm_contacts adds the responsible user's name.
with

current_versions as (

    {{ amocrm_current_versions('contacts') }}

),

extracted as (

    select
        *,
        {{ amocrm_field_value('custom_fields_values', 'contact_phone') }} as phone_raw,
        {{ amocrm_field_value('custom_fields_values', 'contact_email') }} as email_raw
    from current_versions

),

final as (

    select
        id as contact_id,
        name as full_name,
        first_name,
        last_name,
        responsible_user_id,
        {{ mask_pii(amocrm_phone_e164('phone_raw')) }} as phone,
        {{ amocrm_phone_is_invalid('phone_raw') }} as phone_invalid,
        {{ mask_pii(amocrm_email('email_raw')) }} as email,
        {{ amocrm_lifecycle_columns() }},
        {{ amocrm_ids('companies_json') }} as company_ids,
        {{ amocrm_ids('leads_json') }} as lead_ids,
        _loaded_at as loaded_at
    from extracted

)

select * from final

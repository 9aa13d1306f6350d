{{
    config(
        alias='amocrm_companies_latest',
    )
}}
-- silver.amocrm_companies_latest: the latest version of every company, typed, with its deletion state and
-- the configured custom fields (BIN, industry). silver.amocrm_companies adds the responsible user's name.
with

current_versions as (

    {{ amocrm_current_versions('companies') }}

),

final as (

    select
        id as company_id,
        name as company_name,
        responsible_user_id,
        nullif(trim({{ amocrm_field_value('custom_fields_values', 'company_bin') }}), '') as bin,
        nullif(trim({{ amocrm_field_value('custom_fields_values', 'company_industry') }}), '') as industry,
        {{ amocrm_lifecycle_columns() }},
        {{ amocrm_ids('contacts_json') }} as contact_ids,
        {{ amocrm_ids('leads_json') }} as lead_ids,
        _loaded_at as loaded_at
    from current_versions

)

select * from final

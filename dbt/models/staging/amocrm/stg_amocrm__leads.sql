{{
    config(
        alias='amocrm_leads_latest',
    )
}}
-- silver.amocrm_leads_latest: the latest version of every lead in bronze, typed, with its deletion state
-- (macros/amocrm.sql, amocrm_current_versions) and the configured custom fields. silver.amocrm_leads adds
-- the names of users, pipelines and statuses.
with

current_versions as (

    {{ amocrm_current_versions('leads') }}

),

final as (

    select
        id as lead_id,
        name as lead_name,
        price,
        responsible_user_id,
        status_id,
        pipeline_id,
        loss_reason_id,
        get_json_object(raw_json, '$._embedded.loss_reason[0].name') as loss_reason,
        {{ amocrm_lifecycle_columns(['closed_at']) }},
        nullif(trim({{ amocrm_field_value('custom_fields_values', 'lead_bin') }}), '') as cf_bin,
        nullif(trim({{ amocrm_field_value('custom_fields_values', 'lead_source') }}), '') as cf_source,
        {{ amocrm_ids('contacts_json') }} as contact_ids,
        {{ amocrm_ids('companies_json') }} as company_ids,
        {{ amocrm_tag_names('tags_json') }} as tags,
        score,
        labor_cost,
        {{ amocrm_local_date(amocrm_timestamp('created_at')) }} as created_date,
        cast(year({{ amocrm_local_date(amocrm_timestamp('created_at')) }}) as int) as year,
        _loaded_at as loaded_at
    from current_versions

)

select * from final

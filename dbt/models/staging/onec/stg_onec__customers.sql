{{
    config(
        alias='onec_customers',
        materialized='table',
    )
}}
-- silver.onec_customers: counterparties (Контрагенты), current state, one row per 1C id; those embedded in
-- documents count too (the latest mention wins). Type: legal entity when a KPP, an official name or a
-- 10-digit INN says so; individual for a 12-digit INN or a person's name; else unknown.
with

latest as (

    -- only a Контрагенты list makes a full package cover counterparties: buyers embedded in the order
    -- documents of a full package are not the whole list
    select *
    from (
        {{ onec_latest('contragents', 'e.id', packages=onec_bronze_packages(), covers='document_id is null') }}
    ) as state

),

final as (

    select
        id as customer_id,
        coalesce(official_name, full_name, name) as display_name,
        name,
        full_name,
        official_name,
        case
            when kpp is not null or official_name is not null or inn rlike '^[0-9]{10}$' then 'legal'
            when inn rlike '^[0-9]{12}$' or last_name is not null or first_name is not null then 'individual'
            else 'unknown'
        end as customer_type,
        role,
        inn,
        kpp,
        okpo,
        last_name,
        first_name,
        middle_name,
        coalesce(legal_address, registration_address) as legal_address,
        registration_address,
        address,
        email,
        phone,
        addresses as addresses_json,
        contacts as contacts_json,
        bank_accounts as bank_accounts_json,
        document_id as last_seen_in_document_id,
        coalesce(deleted, false) as is_deleted,
        is_stale,
        not coalesce(deleted, false) and not is_stale as is_active,
        package_id,
        exchange_at as updated_at
    from latest

)

select * from final

{{
    config(
        materialized='ephemeral',
    )
}}
-- The deal both CRMs receive for each live reception of a known branch, before each outbound model keeps
-- its CRM's columns and hashes them. Ephemeral on purpose: it carries the patient's phone in clear, which
-- must land only in the outbound namespace, never in silver (BI users read silver and gold, masked per
-- pii_masking). The rules are in _int_clinic__deals.yml, pinned by its unit tests.
with

receptions as (

    select * from {{ ref('int_receptions_enriched') }}
    where not is_deleted and branch_number is not null

),

latest_persons as (

    {{ ident_latest_versions('persons') }}

),

-- The CRMs match contacts by phone and store it, so the phone is read from bronze and normalised by the
-- shared rules but not masked (stg_ident__persons masks it).
phones as (

    select
        source_db,
        id as person_id,
        {{ phone_e164('mobile_phone') }} as phone
    from latest_persons
    where not key_deleted

),

deals as (

    select
        concat('F', receptions.branch_number, '_', receptions.reception_id) as external_id,
        receptions.source_db,
        receptions.branch_number,
        receptions.branch_name,
        receptions.reception_id,
        receptions.patient_id,
        receptions.card_number as patient_number,
        receptions.patient_full_name,
        phones.phone,
        receptions.plan_start_iso,
        receptions.plan_end_iso,
        receptions.reception_date,
        receptions.armchair_name,
        receptions.doctor_name,
        receptions.doctor_speciality,
        -- The contract's limit, kept here where it is promised (silver cuts at the same length).
        left(receptions.services, 3000) as services,
        cast(receptions.amount as decimal(18, 2)) as amount,
        receptions.status,
        nullif(concat_ws(': ', receptions.cancel_reason_name, receptions.cancel_reason_comment), '') as cancel_reason,
        receptions.comment,
        case when receptions.completed_receptions_before = 0 then 'primary' else 'repeat' end as funnel,
        receptions.completed_receptions_before,
        receptions.changed_at
    from receptions
    left join phones
        on
            receptions.source_db = phones.source_db
            and receptions.patient_id = phones.person_id

),

final as (

    select
        *,
        -- Only the automatic stages; the manual ones (plan presentation, prepayment, waiting list) are
        -- the CRM users' and the sync protects them.
        case
            when status = 'cancelled' then 'lose'
            when funnel = 'primary' and status = 'completed' then 'consultation_done'
            when funnel = 'primary' then 'consultation_scheduled'
            when status = 'completed' then 'won'
            else 'treatment'
        end as stage_code,
        concat_ws(
            ' ',
            concat_ws(' — ', coalesce(patient_full_name, external_id), cast(reception_date as string)),
            branch_name
        ) as deal_title
    from deals

)

select * from final

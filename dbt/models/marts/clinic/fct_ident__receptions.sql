{{ config(**ident_feed_config('ident_receptions')) }}
-- gold.ident_receptions: the deal feed both CRMs read — one row per live reception with its external id
-- F<branch>_<ID>, the fields the CRMs receive and a hash over them (a changed hash = a deal to update).
-- Incremental: the receptions of patients whose silver rows changed since the last build are merged, and
-- those no longer live are deleted (macros/ident_incremental.sql).
with

{% if is_incremental() %}
    changed as (

        {{ ident_changed_receptions(ref('int_receptions_enriched')) }}

    ),
{% endif %}

receptions as (

    select receptions.*
    from {{ ref('int_receptions_enriched') }} as receptions
    {{ ident_if_incremental_only('receptions', 'changed') }}
    where not receptions.is_deleted

),

fields as (

    select
        case when branch_number is not null then concat('F', branch_number, '_', reception_id) end as external_id,
        branch_number,
        branch_name,
        source_db,
        reception_id,
        patient_id,
        patient_full_name,
        patient_phone,
        card_number,
        plan_start,
        plan_end,
        plan_start_iso,
        plan_end_iso,
        reception_date,
        armchair_name,
        doctor_name,
        doctor_speciality,
        services,
        amount,
        status,
        cancel_reason_name,
        cancel_reason_comment,
        comment,
        booked_at,
        changed_at,
        completed_receptions_before,
        case when is_primary then 'primary' else 'repeat' end as funnel
    from receptions

),

final as (

    select
        *,
        sha2(to_json(named_struct(
            'external_id', external_id,
            'patient_full_name', patient_full_name,
            'patient_phone', patient_phone,
            'card_number', card_number,
            'plan_start_iso', plan_start_iso,
            'plan_end_iso', plan_end_iso,
            'branch_name', branch_name,
            'armchair_name', armchair_name,
            'doctor_name', doctor_name,
            'doctor_speciality', doctor_speciality,
            'services', services,
            'amount', cast(amount as string),
            'status', status,
            'cancel_reason_name', cancel_reason_name,
            'cancel_reason_comment', cancel_reason_comment,
            'comment', comment,
            'funnel', funnel
        )), 256) as row_hash
    from fields

)

{{ ident_merge_rows('final', 'changed') }}

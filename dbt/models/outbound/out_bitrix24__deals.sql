{{ config(**ident_feed_config('bitrix24_deals')) }}
-- depends_on: {{ ref('int_receptions_enriched') }}
-- outbound.bitrix24_deals: the deal feed reverse_etl_bitrix24 pushes to Bitrix24, one row per live reception
-- of a known branch (external_id F<branch>_<ID>). Columns and rules in _outbound__models.yml; the row's
-- contract is schemas/contracts/bitrix24/deal.schema.json. Incremental as gold.ident_receptions: changed
-- receptions merged, those no longer in the feed deleted (macros/ident_incremental.sql).
{#- The fields Bitrix24 receives, hashed into row_hash; the other columns are keys and context for the sync. -#}
{%- set sent = [
    'external_id', 'deal_title', 'funnel', 'stage_code', 'status',
    'patient_full_name', 'phone', 'patient_number', 'reception_id',
    'plan_start_iso', 'plan_end_iso', 'branch_name', 'armchair_name',
    'doctor_name', 'doctor_speciality', 'services', 'amount', 'cancel_reason', 'comment',
] %}
with

{% if is_incremental() %}
    changed as (

        {{ ident_changed_receptions(ref('int_receptions_enriched')) }}

    ),
{% endif %}

deals as (

    select deals.*
    from {{ ref('int_receptions_prepared_as_deals') }} as deals
    {{ ident_if_incremental_only('deals', 'changed') }}

),

final as (

    select
        {%- for column in sent %}
            {{ column }},
        {%- endfor %}
        source_db,
        branch_number,
        patient_id,
        reception_date,
        completed_receptions_before,
        changed_at,
        {{ outbound_row_hash(sent) }} as row_hash
    from deals

)

{{ ident_merge_rows('final', 'changed') }}

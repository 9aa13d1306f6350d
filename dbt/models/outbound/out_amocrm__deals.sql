{{ config(**ident_feed_config('amocrm_deals')) }}
-- depends_on: {{ ref('int_receptions_enriched') }}
-- outbound.amocrm_deals: the deal feed reverse_etl_amocrm pushes to amoCRM, one row per live reception of a
-- known branch (external_id F<branch>_<ID>); amoCRM takes fewer fields than Bitrix24 (reception id and
-- date, doctor, services, cost, patient number, and the contact). Columns and rules in
-- _outbound__models.yml; the row's contract is schemas/contracts/amocrm/deal.schema.json. Incremental as
-- gold.ident_receptions: changed receptions merged, those no longer in the feed deleted.
{#- The fields amoCRM receives, hashed into row_hash; the other columns are keys and context for the sync. -#}
{%- set sent = [
    'external_id', 'deal_title', 'funnel', 'stage_code', 'status',
    'patient_full_name', 'phone', 'patient_number',
    'reception_id', 'reception_date', 'plan_start_iso', 'doctor_name', 'services', 'amount',
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
        branch_name,
        patient_id,
        completed_receptions_before,
        changed_at,
        {{ outbound_row_hash(sent) }} as row_hash
    from deals

)

{{ ident_merge_rows('final', 'changed') }}

{{
    config(
        alias='onec_prices_state',
        materialized='table',
    )
}}
-- silver.onec_prices_state: current prices, one per SKU × price type (deltas upsert per pair; a pair left
-- out of the latest full prices package is stale), with the price read as a number (`price_value`).
select
    state.*,
    {{ onec_sku_id('state.product_id', 'state.characteristic_id') }} as sku_id,
    {{ onec_number('state.price') }} as price_value
from (
    {{ onec_latest(
        'prices',
        "concat_ws('|', " ~ onec_sku_id('e.product_id', 'e.characteristic_id') ~ ", e.price_type_id)"
    ) }}
) as state

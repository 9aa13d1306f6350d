{{
    config(
        alias='onec_offers_state',
        materialized='table',
    )
}}
-- silver.onec_offers_state: current offers (bronze.onec_offers), one per SKU id
-- (`state_key` = product#characteristic), with `is_stale` (left out of the latest full package carrying offers).
select * from ({{ onec_latest('offers', onec_sku_id('e.product_id', 'e.characteristic_id')) }}) as state

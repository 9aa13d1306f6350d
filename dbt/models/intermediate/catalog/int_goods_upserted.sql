{{
    config(
        alias='onec_goods_state',
        materialized='table',
    )
}}
-- silver.onec_goods_state: current goods records (bronze.onec_products), one per SKU id of the goods
-- (`state_key`), with `is_stale`. A table, not an ephemeral model: the product assembly reads it six times.
select * from ({{ onec_latest('products', onec_sku_id('e.parent_id', 'e.characteristic_id')) }}) as state

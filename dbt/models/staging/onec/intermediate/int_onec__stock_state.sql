{{
    config(
        alias='onec_stock_state',
        materialized='table',
    )
}}
-- Current stock: one row per SKU × warehouse plus one total row per SKU (`warehouse_id` null); rules in
-- macros/onec_state.sql (onec_stock_rows).
select
    sku_id,
    warehouse_id,
    quantity,
    package_id,
    exchange_at
from ({{ onec_stock_rows() }}) as stock

{{
    config(
        alias='onec_stock_state',
        materialized='table',
    )
}}
-- silver.onec_stock_state: current stock, one row per SKU × warehouse plus one total row per SKU
-- (`warehouse_id` null). Each SKU's stock is replaced whole by the latest package carrying it; rules in
-- macros/onec_state.sql (onec_stock_rows).
select
    sku_id,
    warehouse_id,
    quantity,
    package_id,
    exchange_at
from ({{ onec_stock_rows() }}) as stock

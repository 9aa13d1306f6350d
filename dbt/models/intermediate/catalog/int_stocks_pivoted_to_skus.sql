-- Step 4 of silver.onec_products: each SKU's current stock — 1C's total (or the warehouse sum, see
-- int_stocks_upserted) and a map warehouse name → quantity — with the time of the package it came from.
with

warehouses as (

    {{ onec_labels('warehouses') }}

),

stock_rows as (

    select * from {{ ref('int_stocks_upserted') }}

),

final as (

    select
        stock_rows.sku_id,
        max(case when stock_rows.warehouse_id is null then stock_rows.quantity end) as total_stock,
        map_from_entries(
            collect_list(
                case
                    when stock_rows.warehouse_id is not null
                        then struct(coalesce(warehouses.label, stock_rows.warehouse_id), stock_rows.quantity)
                end
            )
        ) as stock_by_warehouse,
        max(stock_rows.exchange_at) as stock_updated_at
    from stock_rows
    left join warehouses on stock_rows.warehouse_id = warehouses.id
    group by stock_rows.sku_id

)

select * from final

{{
    config(
        alias='onec_catalog',
        materialized='table',
    )
}}
-- gold.onec_catalog: the BI-ready catalog, one row per SKU with its category path, current prices and
-- stock. `base_price` is the price of the price type named (or with the id) in the dbt var
-- `onec_base_price_type`; without the var, the price when the SKU has exactly one.
{%- set base_price_type = var('onec_base_price_type', none) %}
{%- if base_price_type %}
    {%- set base_price = "element_at(prices, '" ~ base_price_type ~ "')" %}
{%- else %}
    {%- set base_price = "case when size(prices) = 1 then element_at(map_values(prices), 1) end" %}
{%- endif %}
with

products as (

    select * from {{ ref('int_products_assembled') }}

),

final as (

    select
        sku_id,
        product_id,
        offer_id,
        name,
        goods_name,
        article,
        barcode,
        unit,
        category_id,
        category_name,
        coalesce(category_path, '(no category)') as category_path,
        coalesce(top_category, '(no category)') as top_category,
        brand,
        {{ base_price }} as base_price,
        array_min(map_values(prices)) as min_price,
        array_max(map_values(prices)) as max_price,
        prices,
        total_stock,
        in_stock,
        cast(size(map_filter(stock_by_warehouse, (warehouse, quantity) -> quantity > 0)) as int)
            as warehouses_in_stock,
        is_active,
        is_deleted,
        updated_at
    from products

)

select * from final

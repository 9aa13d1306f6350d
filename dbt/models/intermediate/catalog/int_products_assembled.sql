{{
    config(
        alias='onec_products',
        materialized='table',
    )
}}
-- silver.onec_products: one row per SKU (spec §4.1), assembled from the steps before it:
--   1. int_skus_matched: the SKU list, each with its offer and goods records;
--   2. goods give the base (category, brand, description); the offer's name and article overwrite the goods';
--   3. int_specifications_merged: goods specifications with the offer's merged over them;
--   4. int_prices_pivoted_to_skus, int_stocks_pivoted_to_skus: current prices and stock, under the package
--      rules of macros/onec_state.sql.
with

skus as (

    select * from {{ ref('int_skus_matched') }}

),

goods as (

    select * from {{ ref('int_goods_upserted') }}

),

offers as (

    select * from {{ ref('int_offers_upserted') }}

),

categories as (

    select
        category_id,
        name,
        category_path,
        top_category
    from {{ ref('stg_onec__categories') }}

),

specifications as (

    select * from {{ ref('int_specifications_merged') }}

),

prices as (

    select * from {{ ref('int_prices_pivoted_to_skus') }}

),

stock as (

    select * from {{ ref('int_stocks_pivoted_to_skus') }}

),

assembled as (

    select
        skus.sku_id,
        offers.id as offer_id,
        coalesce(offers.product_id, goods.parent_id) as product_id,
        coalesce(offers.characteristic_id, goods.characteristic_id) as characteristic_id,
        coalesce(offers.name, goods.name) as name,
        goods.name as goods_name,
        coalesce(offers.sku, goods.sku) as article,
        coalesce(offers.barcode, goods.barcode) as barcode,
        coalesce(offers.unit, goods.unit) as unit,
        goods.description,
        get_json_object(goods.group_ids, '$[0]') as category_id,
        categories.name as category_name,
        categories.category_path,
        categories.top_category,
        goods.brand,
        goods.manufacturer,
        goods.country,
        goods.images as images_json,
        coalesce(specifications.specifications, map()) as specifications,
        coalesce(prices.prices, map()) as prices,
        coalesce(stock.total_stock, cast(0 as decimal(18, 3))) as total_stock,
        coalesce(stock.stock_by_warehouse, map()) as stock_by_warehouse,
        goods.state_key is not null as has_goods_record,
        coalesce(offers.deleted, false) or coalesce(goods.deleted, false) as is_deleted,
        coalesce(offers.is_stale, false) or coalesce(goods.is_stale, false) as is_stale,
        offers.package_id as offer_package_id,
        goods.package_id as goods_package_id,
        greatest(
            coalesce(offers.exchange_at, goods.exchange_at),
            coalesce(goods.exchange_at, offers.exchange_at),
            coalesce(prices.prices_updated_at, offers.exchange_at, goods.exchange_at),
            coalesce(stock.stock_updated_at, offers.exchange_at, goods.exchange_at)
        ) as updated_at,
        coalesce(offers._issues, goods._issues) as issues
    from skus
    left join offers on skus.offer_key = offers.state_key
    left join goods on skus.goods_key = goods.state_key
    left join categories on get_json_object(goods.group_ids, '$[0]') = categories.category_id
    left join specifications on skus.sku_id = specifications.sku_id
    left join prices on skus.sku_id = prices.sku_id
    left join stock on skus.sku_id = stock.sku_id

),

final as (

    select
        *,
        total_stock > 0 as in_stock,
        not is_deleted and not is_stale as is_active
    from assembled

)

select * from final

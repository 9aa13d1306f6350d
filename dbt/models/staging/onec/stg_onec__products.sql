{{
    config(
        alias='onec_products',
        materialized='table',
    )
}}
-- silver.onec_products: one row per SKU, assembled in two steps (spec §4.1):
--   1. goods (Каталог/Товары) give the base: category, brand, description, base specifications;
--   2. each offer (Предложение, id `product#characteristic`) finds its goods record by the same SKU id,
--      else by the product part of its id; its name and article overwrite the goods', its
--      characteristics and property values are merged over the goods' (the offer wins on a name clash).
-- Goods with no offer at all are SKUs themselves. Prices (offer × price type) and stock (per warehouse
-- and total) are the current state under the package rules of macros/onec_state.sql.
with

goods as (

    select * from {{ ref('int_onec__goods_state') }}

),

offers as (

    select * from {{ ref('int_onec__offers_state') }}

),

goods_by_product as (

    -- one goods record per plain product id (a 2.04 export lists goods as uuid#uuid: prefer the plain one)
    select *
    from (
        select
            *,
            row_number() over (
                partition by parent_id
                order by case when characteristic_id is null then 0 else 1 end, state_key
            ) as preference
        from goods
    ) as ranked
    where preference = 1

),

offer_skus as (

    select distinct state_key from offers

),

offer_products as (

    select distinct product_id from offers

),

skus as (

    select
        offers.state_key as sku_id,
        offers.state_key as offer_key,
        coalesce(same_sku.state_key, same_product.state_key) as goods_key
    from offers
    left join goods as same_sku on offers.state_key = same_sku.state_key
    left join goods_by_product as same_product on offers.product_id = same_product.parent_id

    union all

    select
        goods.state_key as sku_id,
        cast(null as string) as offer_key,
        goods.state_key as goods_key
    from goods
    left join offer_skus on goods.state_key = offer_skus.state_key
    left join offer_products
        on goods.parent_id = offer_products.product_id and goods.characteristic_id is null
    where offer_skus.state_key is null and offer_products.product_id is null

),

categories as (

    select
        category_id,
        name,
        category_path,
        top_category
    from {{ ref('stg_onec__categories') }}

),

-- specifications: goods property values (1), goods characteristics (2), offer characteristics (3),
-- offer property values (4); the highest priority wins per name, several values of one property join.
property_values as (

    select
        package_id,
        product_id,
        offer_id,
        property_name,
        property_id,
        value
    from {{ source('onec', 'onec_property_values') }}

),

spec_entries as (

    select
        skus.sku_id,
        coalesce(pv.property_name, pv.property_id) as spec_name,
        pv.value,
        1 as priority
    from skus
    inner join goods on skus.goods_key = goods.state_key
    inner join property_values as pv
        on goods.package_id = pv.package_id and goods.id = pv.product_id and pv.offer_id is null

    union all

    select
        skus.sku_id,
        ch.name as spec_name,
        ch.value,
        2 as priority
    from skus
    inner join goods on skus.goods_key = goods.state_key
        lateral view explode(
            from_json(goods.characteristics, 'array<struct<id:string,name:string,value:string>>')
        ) exploded as ch

    union all

    select
        skus.sku_id,
        ch.name as spec_name,
        ch.value,
        3 as priority
    from skus
    inner join offers on skus.offer_key = offers.state_key
        lateral view explode(
            from_json(offers.characteristics, 'array<struct<id:string,name:string,value:string>>')
        ) exploded as ch

    union all

    select
        skus.sku_id,
        coalesce(pv.property_name, pv.property_id) as spec_name,
        pv.value,
        4 as priority
    from skus
    inner join offers on skus.offer_key = offers.state_key
    inner join property_values as pv on offers.package_id = pv.package_id and offers.id = pv.offer_id

),

spec_values as (

    select
        sku_id,
        spec_name,
        priority,
        concat_ws(', ', collect_list(value)) as spec_value
    from spec_entries
    where spec_name is not null and value is not null
    group by sku_id, spec_name, priority

),

specifications as (

    select
        sku_id,
        map_from_entries(collect_list(struct(spec_name, spec_value))) as specifications
    from (
        select
            *,
            row_number() over (partition by sku_id, spec_name order by priority desc) as rank_in_name
        from spec_values
    ) as ranked
    where rank_in_name = 1
    group by sku_id

),

price_types as (

    -- map keys must be unique: a name two price types share gets the id appended
    select
        id,
        case
            when count(*) over (partition by coalesce(name, id)) > 1 then concat(coalesce(name, id), ' [', id, ']')
            else coalesce(name, id)
        end as label
    from ({{ onec_latest('price_types', 'e.id') }}) as state

),

current_prices as (

    select * from {{ ref('int_onec__prices_state') }}
    where not is_stale

),

prices as (

    select
        sku_id,
        map_from_entries(collect_list(struct(label, price_value))) as prices,
        max(exchange_at) as prices_updated_at
    from (
        select
            current_prices.sku_id,
            coalesce(price_types.label, current_prices.price_type_id) as label,
            current_prices.price_value,
            current_prices.exchange_at,
            row_number() over (
                partition by current_prices.sku_id, coalesce(price_types.label, current_prices.price_type_id)
                order by current_prices.package_seq desc, current_prices.record_no desc
            ) as rank_in_label
        from current_prices
        left join price_types on current_prices.price_type_id = price_types.id
        where current_prices.price_value is not null
    ) as labelled
    where rank_in_label = 1
    group by sku_id

),

warehouses as (

    select
        id,
        case
            when count(*) over (partition by coalesce(name, id)) > 1 then concat(coalesce(name, id), ' [', id, ']')
            else coalesce(name, id)
        end as label
    from ({{ onec_latest('warehouses', 'e.id') }}) as state

),

stock_rows as (

    select * from {{ ref('int_onec__stock_state') }}

),

stock as (

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

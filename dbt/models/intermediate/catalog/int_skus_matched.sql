-- Step 1 of silver.onec_products (spec §4.1): the SKU list, one row per SKU id with the keys of its offer
-- and goods records. An offer (id `product#characteristic`) finds its goods record by the same SKU id,
-- else by the product part of its id; goods with no offer at all are SKUs themselves. A plain-id offer
-- whose product has characteristic offers is their parent (an offers-only export, УТ 10.3: the product
-- master, carrying the category), not a SKU: its children get its key as `parent_offer_key` (the same
-- rule as for goods: a plain goods record of an offered product is no SKU).
with

goods as (

    select * from {{ ref('int_goods_upserted') }}

),

offers as (

    select * from {{ ref('int_offers_upserted') }}

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

products_with_characteristics as (

    select distinct product_id
    from offers
    where characteristic_id is not null

),

parent_offers as (

    select
        state_key,
        product_id
    from offers
    where characteristic_id is null

),

offer_matches as (

    select
        offers.state_key as sku_id,
        offers.state_key as offer_key,
        coalesce(same_sku.state_key, same_product.state_key) as goods_key,
        parent_offers.state_key as parent_offer_key
    from offers
    left join goods as same_sku on offers.state_key = same_sku.state_key
    left join goods_by_product as same_product on offers.product_id = same_product.parent_id
    left join parent_offers
        on offers.product_id = parent_offers.product_id and offers.characteristic_id is not null
    left join products_with_characteristics as has_children
        on offers.product_id = has_children.product_id and offers.characteristic_id is null
    where has_children.product_id is null

),

goods_without_offers as (

    select
        goods.state_key as sku_id,
        cast(null as string) as offer_key,
        goods.state_key as goods_key,
        cast(null as string) as parent_offer_key
    from goods
    left join offer_skus on goods.state_key = offer_skus.state_key
    left join offer_products
        on goods.parent_id = offer_products.product_id and goods.characteristic_id is null
    where offer_skus.state_key is null and offer_products.product_id is null

),

final as (

    select * from offer_matches
    union all
    select * from goods_without_offers

)

select * from final

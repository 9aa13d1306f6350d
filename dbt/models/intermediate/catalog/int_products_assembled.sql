{{
    config(
        alias='onec_products',
        materialized='table',
    )
}}
-- silver.onec_products: one row per SKU (spec §4.1), assembled from the steps before it:
--   1. int_skus_matched: the SKU list, each with its offer and goods records;
--   2. goods give the base (category, brand, description); the offer's name and article overwrite the goods';
--      the category is the offer's own `Группы`, else its parent offer's (offers-only exports), else the
--      goods'; the unit is resolved from БазоваяЕдиница (text, attributes) and the ЕдиницыИзмерения
--      classifier (see `units` below);
--   3. int_specifications_merged: goods specifications with the offer's merged over them;
--   4. int_prices_pivoted_to_skus, int_stocks_pivoted_to_skus: current prices and stock, under the package
--      rules of macros/onec_state.sql.
with

{{ onec_sku_records() }},

unit_classifier as (

    select * from ({{ onec_latest('units', 'e.id') }}) as state

),

unit_refs as (

    -- ЕдиницыИзмерения, findable by Ид or Код (БазоваяЕдиница names a unit by its code: 3.1 as text
    -- '796', 2.04/2.07 as attribute Код); an Ид match wins over a Код match
    select
        id as unit_ref,
        name as short_name,
        full_name,
        international_abbreviation,
        package_seq,
        1 as preference
    from unit_classifier
    union all
    select
        code as unit_ref,
        name as short_name,
        full_name,
        international_abbreviation,
        package_seq,
        2 as preference
    from unit_classifier

),

units as (

    select
        unit_ref,
        short_name,
        full_name,
        international_abbreviation
    from (
        select
            *,
            row_number() over (partition by unit_ref order by preference asc, package_seq desc) as rank_in_ref
        from unit_refs
        where unit_ref is not null
    ) as ranked
    where rank_in_ref = 1

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

base_units as (

    -- БазоваяЕдиница of the SKU: the offer's, else its parent offer's, else the goods'
    select
        skus.sku_id,
        coalesce(offers.unit, parent_offers.unit, goods.unit) as unit_text,
        coalesce(offers.unit_code, parent_offers.unit_code, goods.unit_code) as unit_code,
        coalesce(offers.unit_name, parent_offers.unit_name, goods.unit_name) as unit_name,
        coalesce(offers.unit_abbreviation, parent_offers.unit_abbreviation, goods.unit_abbreviation)
            as unit_abbreviation
    from skus
    {{ onec_join_sku_records() }}

),

resolved_units as (

    -- short name from the classifier, else the element text (2.04 'шт'), else the attributes
    -- (2.07: НаименованиеПолное, МеждународноеСокращение), else the bare code
    select
        base_units.sku_id,
        base_units.unit_code,
        coalesce(
            by_code.short_name,
            by_text.short_name,
            base_units.unit_text,
            base_units.unit_name,
            by_code.full_name,
            by_text.full_name,
            base_units.unit_abbreviation,
            by_code.international_abbreviation,
            by_text.international_abbreviation,
            base_units.unit_code
        ) as unit
    from base_units
    left join units as by_code on base_units.unit_code = by_code.unit_ref
    left join units as by_text on base_units.unit_text = by_text.unit_ref

),

sku_categories as (

    select
        skus.sku_id,
        coalesce(
            get_json_object(offers.group_ids, '$[0]'),
            get_json_object(parent_offers.group_ids, '$[0]'),
            get_json_object(goods.group_ids, '$[0]')
        ) as category_id
    from skus
    {{ onec_join_sku_records() }}

),

assembled as (

    select
        skus.sku_id,
        offers.id as offer_id,
        coalesce(offers.product_id, goods.parent_id) as product_id,
        coalesce(offers.characteristic_id, goods.characteristic_id) as characteristic_id,
        coalesce(offers.name, parent_offers.name, goods.name) as name,
        goods.name as goods_name,
        coalesce(offers.sku, parent_offers.sku, goods.sku) as article,
        coalesce(offers.barcode, goods.barcode) as barcode,
        resolved_units.unit,
        resolved_units.unit_code,
        goods.description,
        sku_categories.category_id,
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
        coalesce(offers.deleted, false)
        or coalesce(parent_offers.deleted, false)
        or coalesce(goods.deleted, false) as is_deleted,
        skus.parent_offer_key as parent_offer_id,
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
    {{ onec_join_sku_records() }}
    left join sku_categories on skus.sku_id = sku_categories.sku_id
    left join resolved_units on skus.sku_id = resolved_units.sku_id
    left join categories on sku_categories.category_id = categories.category_id
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

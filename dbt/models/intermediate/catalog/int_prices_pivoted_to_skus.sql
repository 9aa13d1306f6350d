-- Step 3 of silver.onec_products: each SKU's current prices as a map price-type name → price, with the
-- time of the latest package that brought one of them.
with

price_types as (

    {{ onec_labels('price_types') }}

),

current_prices as (

    select * from {{ ref('int_prices_upserted') }}
    where not is_stale

),

labelled as (

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

),

final as (

    select
        sku_id,
        map_from_entries(collect_list(struct(label, price_value))) as prices,
        max(exchange_at) as prices_updated_at
    from labelled
    where rank_in_label = 1
    group by sku_id

)

select * from final

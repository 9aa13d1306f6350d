-- Step 2 of silver.onec_products: each SKU's specifications as a map name → value, merged from goods
-- property values (1), goods characteristics (2), offer characteristics (3) and offer property values (4);
-- the highest priority wins per name, several values of one property join with ', '.
with

{{ onec_sku_records() }},

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

    {%- for records, key, priority in [('goods', 'goods_key', 2), ('offers', 'offer_key', 3)] %}

        select
            skus.sku_id,
            ch.name as spec_name,
            ch.value,
            {{ priority }} as priority
        from skus
        inner join {{ records }} on skus.{{ key }} = {{ records }}.state_key
            lateral view explode(
                from_json({{ records }}.characteristics, 'array<struct<id:string,name:string,value:string>>')
            ) exploded as ch

        union all
    {%- endfor %}

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

final as (

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

)

select * from final

{{
    config(
        alias='onec_price_history',
        materialized='table',
    )
}}
-- gold.onec_price_history: price changes over time per SKU and price type. A row opens when a package
-- (in exchange order) carries a price different from the previous one for that SKU and type, and is
-- valid until the next change; a price left out of a later FULL prices package closes there too.
-- Re-sent unchanged prices do not open rows.
with

observations as (

    select
        state_key as price_key,
        {{ onec_sku_id('product_id', 'characteristic_id') }} as sku_id,
        price_type_id,
        {{ onec_number('price') }} as price,
        currency,
        package_id,
        package_seq,
        exchange_at,
        row_number() over (partition by state_key, package_seq order by record_no desc) as last_in_package
    from (
        {{ onec_rows(
            'prices',
            "concat_ws('|', " ~ onec_sku_id('e.product_id', 'e.characteristic_id') ~ ", e.price_type_id)"
        ) }}
    ) as rows

),

full_packages as (

    -- packages that replace every price: a key they do not carry ends there
    select distinct
        versions.package_seq,
        versions.exchange_at
    from ({{ onec_rows('prices', 'e.offer_id') }}) as versions
    where versions.is_full

),

changes as (

    select
        *,
        lag(price) over (partition by price_key order by package_seq) as previous_price,
        lead(package_seq) over (partition by price_key order by package_seq) as next_seen_seq
    from observations
    where last_in_package = 1 and price is not null

),

opened as (

    select *
    from changes
    where previous_price is null or previous_price != price

),

with_end as (

    select
        opened.*,
        lead(opened.exchange_at) over (partition by opened.price_key order by opened.package_seq)
            as next_change_at,
        last_seen.last_seq
    from opened
    inner join (
        select
            price_key,
            max(package_seq) as last_seq
        from changes
        group by price_key
    ) as last_seen on opened.price_key = last_seen.price_key

),

closed as (

    -- the first full prices package after a key's last appearance left it out: its price ends there
    select
        with_end.price_key,
        min(full_packages.exchange_at) as closed_at
    from with_end
    inner join full_packages on with_end.last_seq < full_packages.package_seq
    group by with_end.price_key

),

price_types as (

    select
        id,
        name
    from ({{ onec_latest('price_types', 'e.id') }}) as state

),

final as (

    select
        with_end.sku_id,
        with_end.price_type_id,
        price_types.name as price_type_name,
        with_end.price,
        with_end.previous_price,
        with_end.currency,
        with_end.exchange_at as valid_from,
        coalesce(with_end.next_change_at, closed.closed_at) as valid_to,
        with_end.package_id
    from with_end
    left join closed on with_end.price_key = closed.price_key and with_end.next_change_at is null
    left join price_types on with_end.price_type_id = price_types.id

)

select
    *,
    valid_to is null as is_current
from final

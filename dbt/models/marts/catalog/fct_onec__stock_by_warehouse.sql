{{
    config(
        alias='onec_stock_by_warehouse',
        partition_by=['snapshot_date'],
    )
}}
-- gold.onec_stock_by_warehouse: stock per SKU and warehouse as it stood at the end of every day on which
-- a package brought stock (1C's exchange date), valid until the next such day; `is_current` marks today's
-- state. Incremental: a run rewrites the latest snapshot day it already has (its `valid_until` and
-- `is_current` change) and adds later days; `dbt build --full-refresh` recomputes all history.
with

days as (

    select distinct to_date(exchange_at) as snapshot_date
    from ({{ onec_rows('stocks', 'e.offer_id') }}) as versions
    {%- if is_incremental() %}
        where to_date(exchange_at) >= (select coalesce(max(snapshot_date), date '1900-01-01') from {{ this }})
    {%- endif %}

),

stock_as_of as (

    select * from ({{ onec_stock_rows(days='select snapshot_date from days') }}) as stock

),

warehouses as (

    select
        id,
        name
    from ({{ onec_latest('warehouses', 'e.id') }}) as state

),

next_days as (

    select
        snapshot_date,
        lead(snapshot_date) over (order by snapshot_date) as valid_until
    from (
        select distinct to_date(exchange_at) as snapshot_date
        from ({{ onec_rows('stocks', 'e.offer_id') }}) as versions
    ) as all_days

),

final as (

    select
        stock_as_of.snapshot_date,
        next_days.valid_until,
        stock_as_of.sku_id,
        stock_as_of.warehouse_id,
        warehouses.name as warehouse_name,
        stock_as_of.quantity,
        stock_as_of.package_id,
        next_days.valid_until is null as is_current
    from stock_as_of
    inner join next_days on stock_as_of.snapshot_date = next_days.snapshot_date
    left join warehouses on stock_as_of.warehouse_id = warehouses.id
    where stock_as_of.warehouse_id is not null

)

select * from final

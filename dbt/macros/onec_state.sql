{#-
  1C exchange semantics shared by the onec silver and gold models (macros rather than ephemeral models
  so that dbt unit tests can feed the bronze sources directly).

  Package order: silver.onec_packages (stg_onec__packages) — loaded packages sorted by 1C's
  ДатаФормирования, then by arrival (onec_packages_in_exchange_order). Intermediate models and marts
  read that order from silver; staging models, which read nothing but sources, compute it from the
  bronze journal with the same macro (`packages=onec_bronze_packages()`).

  State of an entity = for every key, the row of the latest package holding that key (full packages and
  deltas both upsert). A key whose latest package is older than the latest FULL package holding that
  entity was left out of a full export: it is stale (`is_stale`), i.e. deactivated, never deleted.

  FULL (`is_full` of the journal, set by the loader): no file of the package declares
  СодержитТолькоИзменения="true" — "false" or no attribute at all (the schema gives it no default;
  site importers such as 1C-Bitrix's treat anything but "true" as a full package). Granularity is the
  package and the entity: a full package deactivates, for each entity it carries rows of, the keys it
  leaves out; entities it does not carry are untouched. Contragents count only from a Контрагенты list
  (`covers`), not from the buyers embedded in order documents.
-#}

{#- Canonical SKU id: `product#characteristic`, or `product` (so `uuid` and `uuid#` join). Same as rules.sku_key. -#}
{% macro onec_sku_id(product_col, characteristic_col) -%}
case
    when {{ product_col }} is null then null
    when coalesce({{ characteristic_col }}, '') = '' then {{ product_col }}
    else concat({{ product_col }}, '#', {{ characteristic_col }})
end
{%- endmacro %}

{#- A number as 1C writes it ('1719', '12,5', '1 200.00') → decimal; null if not a number (rules.parse_number). -#}
{% macro onec_number(col, type='decimal(18,4)') -%}
    try_cast(replace(regexp_replace(trim({{ col }}), '[\\s\u00a0\u202f\u2009\']', ''), ',', '.') as {{ type }})
{%- endmacro %}

{#-
  The loaded packages of a package journal (`relation`: bronze.onec_packages), with `exchange_at`
  (1C's ДатаФормирования, else first arrival) and their exchange order `package_seq` (1 = oldest).
-#}
{% macro onec_packages_in_exchange_order(relation) -%}
select
    *,
    row_number() over (order by exchange_at, first_seen_at, package_id) as package_seq
from (
    select
        *,
        coalesce(cast(generated_at as timestamp), cast(first_seen_at as timestamp)) as exchange_at
    from {{ relation }}
    where status = 'loaded'
) as loaded
{%- endmacro %}

{#- The package order computed from bronze, for staging models (a subquery to pass as `packages`). -#}
{% macro onec_bronze_packages() -%}
    ({{ onec_packages_in_exchange_order(source('onec', 'onec_packages')) }})
{%- endmacro %}

{#-
  Every row of a bronze entity with its package's order and flags (`package_seq`, `exchange_at`,
  `is_full`) and its state key (`key`: SQL over the entity's columns, aliased `e`). `packages`: the
  ordered packages, silver.onec_packages unless given (staging passes onec_bronze_packages()).
-#}
{% macro onec_rows(entity, key, packages=none) -%}
select
    e.*,
    {{ key }} as state_key,
    p.package_seq,
    p.exchange_at,
    p.is_full
from {{ source('onec', 'onec_' ~ entity) }} as e
inner join {{ packages if packages is not none else ref('stg_onec__packages') }} as p
    on e.package_id = p.package_id
{%- endmacro %}

{#-
  Current state of an entity: the latest row per key (latest package, then last record in it), with
  `is_stale` = the key is missing from the latest full package that holds this entity. `packages`: as
  for onec_rows. `covers`: SQL over the entity's columns selecting the rows that make a full package
  cover the entity (default: every row).
-#}
{% macro onec_latest(entity, key, packages=none, covers='true') -%}
with

versions as (
    {{ onec_rows(entity, key, packages) }}
),

coverage as (
    select max(case when is_full and ({{ covers }}) then package_seq end) as full_seq from versions
),

ranked as (
    select
        *,
        row_number() over (partition by state_key order by package_seq desc, record_no desc) as recency
    from versions
    where state_key is not null
)

select
    ranked.*,
    ranked.package_seq < coalesce(coverage.full_seq, 0) as is_stale
from ranked
cross join coverage
where ranked.recency = 1
{%- endmacro %}

{#-
  `id` → `label` of a reference entity's current state (price types, warehouses) for use as map keys,
  which must be unique: the name, or the id where there is none; a name two ids share gets the id appended.
-#}
{% macro onec_labels(entity) -%}
select
    id,
    case
        when count(*) over (partition by coalesce(name, id)) > 1 then concat(coalesce(name, id), ' [', id, ']')
        else coalesce(name, id)
    end as label
from ({{ onec_latest(entity, 'e.id') }}) as state
{%- endmacro %}

{#-
  Current stock rows, one per (SKU, warehouse) plus one total row per SKU (`warehouse_id` null):
  each SKU's stock comes whole from the latest package that carries stock for it (a rests export lists
  an offer with all its warehouses); SKUs left out of the latest FULL package with stock have none.
  Total = the package's total row for the SKU (offer `Количество` / `Остаток` without warehouse) when
  present, else the sum of its warehouse rows (README: never add a total to warehouse rows).

  `days`: a relation or subquery with a `snapshot_date` column; the state is then computed as of the
  end of each of those days (packages exchanged on or before it) and every row carries its
  `snapshot_date`. Without it, the current state (`snapshot_date` null).
-#}
{% macro onec_stock_rows(days=none) -%}
with

versions as (
    select
        rows.*,
        rows.state_key as sku_id,
        {{ onec_number('rows.quantity', 'decimal(18,3)') }} as quantity_value,
    {%- if days is not none %}
        days.snapshot_date
    from ({{ onec_rows('stocks', onec_sku_id('e.product_id', 'e.characteristic_id')) }}) as rows
    inner join ({{ days }}) as days on to_date(rows.exchange_at) <= days.snapshot_date
        {%- else %}
        cast(null as date) as snapshot_date
    from ({{ onec_rows('stocks', onec_sku_id('e.product_id', 'e.characteristic_id')) }}) as rows
    {%- endif %}
),

coverage as (
    select snapshot_date, max(case when is_full then package_seq end) as full_seq
    from versions
    group by snapshot_date
),

latest_package as (
    select snapshot_date, sku_id, max(package_seq) as sku_seq from versions group by snapshot_date, sku_id
),

current_rows as (
    select versions.*
    from versions
    inner join latest_package
        on versions.snapshot_date <=> latest_package.snapshot_date
        and versions.sku_id = latest_package.sku_id
        and versions.package_seq = latest_package.sku_seq
    inner join coverage on versions.snapshot_date <=> coverage.snapshot_date
    where versions.package_seq >= coalesce(coverage.full_seq, 0)
),

by_warehouse as (
    select *
    from (
        select
            *,
            row_number() over (
                partition by snapshot_date, sku_id, warehouse_id order by record_no desc
            ) as recency
        from current_rows
        where warehouse_id is not null
    ) as deduplicated
    where recency = 1
),

declared_total as (
    select *
    from (
        select
            *,
            row_number() over (partition by snapshot_date, sku_id order by record_no desc) as recency
        from current_rows
        where warehouse_id is null
    ) as deduplicated
    where recency = 1
),

summed as (
    select
        snapshot_date,
        sku_id,
        max(package_id) as package_id,
        max(exchange_at) as exchange_at,
        sum(quantity_value) as quantity_value
    from by_warehouse
    group by snapshot_date, sku_id
),

totals as (
    select
        coalesce(declared_total.snapshot_date, summed.snapshot_date) as snapshot_date,
        coalesce(declared_total.sku_id, summed.sku_id) as sku_id,
        coalesce(declared_total.package_id, summed.package_id) as package_id,
        coalesce(declared_total.exchange_at, summed.exchange_at) as exchange_at,
        coalesce(declared_total.quantity_value, summed.quantity_value) as quantity_value
    from declared_total
    full outer join summed
        on declared_total.snapshot_date <=> summed.snapshot_date and declared_total.sku_id = summed.sku_id
)

select snapshot_date, sku_id, warehouse_id, quantity_value as quantity, package_id, exchange_at
from by_warehouse
union all
select snapshot_date, sku_id, cast(null as string) as warehouse_id, quantity_value as quantity, package_id, exchange_at
from totals
{%- endmacro %}

{#-
  The SKU assembly of silver.onec_products (int_skus_matched → int_specifications_merged →
  int_products_assembled): what its steps share.
-#}

{#-
  The import CTEs of a step over the SKU list: `skus` (int_skus_matched: each SKU id with the keys of its
  offer, parent offer and goods records), `goods` and `offers` (their current state, joined on `state_key`).
-#}
{% macro onec_sku_records() -%}
skus as (

    select * from {{ ref('int_skus_matched') }}

),

goods as (

    select * from {{ ref('int_goods_upserted') }}

),

offers as (

    select * from {{ ref('int_offers_upserted') }}

)
{%- endmacro %}

{#- Each SKU's offer, parent offer and goods record, joined to `skus` (any of them may be missing). -#}
{% macro onec_join_sku_records() -%}
left join offers on skus.offer_key = offers.state_key
left join offers as parent_offers on skus.parent_offer_key = parent_offers.state_key
left join goods on skus.goods_key = goods.state_key
{%- endmacro %}

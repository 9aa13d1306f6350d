{#-
  The fast path of the clinic domain: the reception chain (stg_ident__receptions → int_receptions_enriched
  → fct_ident__receptions → out_<crm>__deals) is incremental (merge on the reception's key) so that a
  micro-batch of a few receptions rebuilds a few rows, not the domain. What a merge recomputes, and why, is
  in models/staging/ident/_ident__docs.md (`ident_incremental`). A full rebuild (`dbt --full-refresh`, as
  the transform runs after every daily load) recomputes everything and converges whatever the fast path
  cannot see.
-#}

{#-
  Table properties of the chain's tables: MERGE writes delete files and the changed rows (merge-on-read)
  instead of rewriting every data file holding a changed row (copy-on-write, Iceberg's default, which
  for a few receptions rewrites about the whole table). Readers apply the deletes; the full rebuild after
  every daily load starts the tables over without them.
-#}
{% macro ident_merge_on_read() -%}
    {{ return({
        'write.merge.mode': 'merge-on-read',
        'write.update.mode': 'merge-on-read',
        'write.delete.mode': 'merge-on-read',
    }) }}
{%- endmacro %}

{#-
  The config of the chain's models fed from silver.ident_receptions (gold.ident_receptions and both deal
  feeds): a merge on the reception's key, merge-on-read, a row whose `row_hash` is null deleted
  (spark__get_merge_sql below), and the high-water mark recorded in a table property after each build.
  Use: {{ config(**ident_feed_config('<alias>')) }}.
-#}
{% macro ident_feed_config(alias) -%}
    {{ return({
        'alias': alias,
        'materialized': 'incremental',
        'incremental_strategy': 'merge',
        'unique_key': ['source_db', 'reception_id'],
        'on_schema_change': 'fail',
        'tblproperties': ident_merge_on_read(),
        'merge_delete_if_null': 'row_hash',
        'post_hook': "{{ ident_record_high_water_mark(ref('int_receptions_enriched')) }}",
    }) }}
{%- endmacro %}

{#-
  The high-water mark of an incremental model as a timestamp literal: the largest `column` of {{ this }},
  read before the model's SQL runs, so Iceberg prunes files by their column bounds (a scalar subquery would
  be planned without them). An empty table gives the epoch: everything is newer.
-#}
{% macro ident_high_water_mark(column) -%}
    {%- set mark = none -%}
    {%- if execute -%}
        {%- set mark = run_query('select cast(max(' ~ column ~ ') as string) from ' ~ this).columns[0].values()[0] -%}
    {%- endif -%}
    {{ ident_timestamp_literal(mark) }}
{%- endmacro %}

{% macro ident_timestamp_literal(text) -%}
    {%- set value = (text or '1970-01-01 00:00:00') | string -%}
    {%- if not value.replace('-', '').replace(':', '').replace('.', '').replace(' ', '').isdigit() -%}
        {{ exceptions.raise_compiler_error("not a timestamp: " ~ value) }}
    {%- endif -%}
    timestamp '{{ value }}'
{%- endmacro %}

{#-
  Models fed from silver.ident_receptions without carrying its `inputs_loaded_at` (gold and the outbound
  feeds, whose columns are fixed by their contracts) keep the mark in a table property, set after each
  build (`ident_record_high_water_mark` as a post-hook) to the largest `inputs_loaded_at` the build read.
-#}
{% macro ident_property_high_water_mark() -%}
    {#- A namespace: a plain `set` inside the loop would not outlive the loop (Jinja scoping), and every
        merge would recompute the whole table from the epoch. -#}
    {%- set mark = namespace(found=none) -%}
    {%- if execute -%}
        {%- for row in run_query('show tblproperties ' ~ this) -%}
            {%- if row[0] == 'elt.ident.inputs_loaded_at' -%}
                {%- set mark.found = row[1] -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(mark.found) }}
{%- endmacro %}

{% macro ident_record_high_water_mark(upstream) -%}
    {%- if execute -%}
        {%- set result = run_query('select cast(max(inputs_loaded_at) as string) from ' ~ upstream) -%}
        {%- set mark = result.columns[0].values()[0] or '1970-01-01 00:00:00' -%}
        alter table {{ this }} set tblproperties ('elt.ident.inputs_loaded_at' = '{{ mark }}')
    {%- endif -%}
{%- endmacro %}

{#-
  (source_db, reception_id) of the receptions a model fed from silver.ident_receptions (`enriched`) has to
  redo: every reception of a patient with a silver row newer than the model's mark (the mark in the table
  property), and of the patient {{ this }} had for such a reception (a reception moved to another patient
  changes the history of the one it left). Deleted receptions are among them: the caller deletes them.
-#}
{% macro ident_changed_receptions(enriched) -%}
    {%- set mark = ident_timestamp_literal(ident_property_high_water_mark()) -%}
    select enriched.source_db, enriched.reception_id
    from {{ enriched }} as enriched
    left semi join (
        select source_db, patient_id from {{ enriched }} where inputs_loaded_at > {{ mark }}
        union
        select previous.source_db, previous.patient_id
        from {{ this }} as previous
        inner join {{ enriched }} as changed
            on
                previous.source_db = changed.source_db
                and previous.reception_id = changed.reception_id
                and changed.inputs_loaded_at > {{ mark }}
    ) as patients
        on
            enriched.source_db = patients.source_db
            and enriched.patient_id <=> patients.patient_id
{%- endmacro %}

{#-
  On an incremental run, `left semi join <keys>` keeping the rows of `alias` whose `columns` are in the
  relation `keys` (`null_safe`: columns compared with <=>, nulls matching); nothing otherwise.
-#}
{% macro ident_if_incremental_only(alias, keys, columns=['source_db', 'reception_id'], null_safe=[]) -%}
    {%- if is_incremental() %}
    left semi join {{ keys }}
        on
            {%- for column in columns %}
            {{ alias }}.{{ column }} {{ '<=>' if column in null_safe else '=' }} {{ keys }}.{{ column }}
            {{- ' and' if not loop.last }}
            {%- endfor %}
    {%- endif %}
{%- endmacro %}

{#-
  The rows an incremental merge of a filtered model applies, one per `changed` key: the key with the
  model's new row for it (`rows`, already restricted to the changed keys), or with nulls when the key is no
  longer in the model (deleted receptions, a chair that left every branch). The model's
  `merge_delete_if_null` column is null exactly then, and the merge deletes the row (spark__get_merge_sql).
  The columns are those of {{ this }}, in its order, so the merge sees no schema change.
-#}
{% macro ident_merge_rows(rows, changed, key=['source_db', 'reception_id']) -%}
    {%- if not is_incremental() -%}
        select * from {{ rows }}
    {%- else -%}
    {#- Outside a run (parsing, sqlfluff) there is no table to read the columns of. -#}
    {%- set columns = (adapter.get_columns_in_relation(this) | map(attribute='name') | list) if execute else key -%}
    select
        {%- for column in columns %}
        {{ changed if column in key else rows }}.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ changed }}
    left join {{ rows }}
        on
            {%- for column in key %}
            {{ changed }}.{{ column }} = {{ rows }}.{{ column }}{{ ' and' if not loop.last }}
            {%- endfor %}
    {%- endif %}
{%- endmacro %}

{#-
  dbt-spark's merge (dbt/include/spark/macros/materializations/incremental/strategies.sql) with explicit
  column lists and, for a model configured `merge_delete_if_null=<column>` (a column never null in the
  model), source rows where that column is null delete the target row instead of updating it, and are
  never inserted. dbt-spark accepts no custom strategy, so its `merge` is overridden here; without
  `merge_delete_if_null` it merges as dbt-spark does.
-#}
{% macro spark__get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) %}
    {%- set predicates = [] if incremental_predicates is none else [] + incremental_predicates -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | list -%}
    {%- set marker = config.get('merge_delete_if_null') -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- for key in keys -%}
        {%- do predicates.append('DBT_INTERNAL_SOURCE.' ~ key ~ ' = DBT_INTERNAL_DEST.' ~ key) -%}
    {%- endfor -%}
    merge into {{ target }} as DBT_INTERNAL_DEST
    using {{ source }} as DBT_INTERNAL_SOURCE
    on {{ predicates | join(' and ') }}
    {%- if marker %}
    when matched and DBT_INTERNAL_SOURCE.{{ marker }} is null then delete
    {%- endif %}
    when matched then update set
        {%- for column in columns %}
        {{ column }} = DBT_INTERNAL_SOURCE.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    when not matched {{- (' and DBT_INTERNAL_SOURCE.' ~ marker ~ ' is not null') if marker }} then insert
        ({{ columns | join(', ') }})
        values ({% for column in columns %}DBT_INTERNAL_SOURCE.{{ column }}{{ ', ' if not loop.last }}{% endfor %})
{% endmacro %}

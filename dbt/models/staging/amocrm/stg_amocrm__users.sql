{{
    config(
        alias='amocrm_users',
    )
}}
-- silver.amocrm_users: the users (managers) of the latest snapshot; e-mail masked like contacts'.
with

snapshot as (

    {{ amocrm_latest_snapshot('amocrm_users') }}

),

final as (

    select
        id as user_id,
        name as user_name,
        {{ mask_pii(amocrm_email('email')) }} as email,
        snapshot_date,
        _loaded_at as loaded_at
    from snapshot

)

select * from final

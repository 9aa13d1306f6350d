{{
    config(
        alias='ident_persons_latest',
    )
}}
-- silver.ident_persons_latest: the latest version of every person (patients and staff alike) per database,
-- with the full name, the birthday parsed from its text and the mobile phone normalised to +7XXXXXXXXXX,
-- then masked per the platform setting (an invalid phone is null with phone_invalid; blank is null).
with

latest as (

    {{ ident_latest_versions('persons') }}

),

renamed as (

    select
        source_db,
        id as person_id,
        nullif(trim(surname), '') as surname,
        nullif(trim(name), '') as first_name,
        nullif(trim(patronymic), '') as patronymic,
        {{ ident_full_name('surname', 'name', 'patronymic') }} as full_name,
        {{ ident_birthday('birthday') }} as birthday,
        {{ mask_pii(phone_e164('mobile_phone')) }} as phone,
        {{ phone_is_invalid('mobile_phone') }} as phone_invalid,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

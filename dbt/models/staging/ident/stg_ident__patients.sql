{{
    config(
        alias='ident_patients_latest',
    )
}}
-- silver.ident_patients_latest: the latest version of every patient (Patients.ID_Persons = Persons.ID) per
-- database, renamed; a key whose latest version is a tombstone is kept with is_deleted = true (macro
-- ident_latest_versions).
with

latest as (

    {{ ident_latest_versions('patients', ['id_persons']) }}

),

renamed as (

    select
        source_db,
        id_persons as patient_id,
        card_number,
        patient_number,
        first_visit,
        first_consultation as first_consultation_at,
        first_treat as first_treat_at,
        date_time_changed as changed_at,
        key_deleted as is_deleted,
        _loaded_at as loaded_at
    from latest

)

select * from renamed

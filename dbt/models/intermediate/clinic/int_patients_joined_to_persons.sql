{{
    config(
        alias='ident_patients',
    )
}}
-- silver.ident_patients: one row per patient per database (Patients.ID_Persons = Persons.ID; the same
-- person in two databases is two patients), with the person's name, birthday and phone.
with

patients as (

    select * from {{ ref('stg_ident__patients') }}

),

persons as (

    select * from {{ ref('stg_ident__persons') }}
    where not is_deleted

),

final as (

    select
        patients.source_db,
        patients.patient_id,
        persons.full_name,
        persons.surname,
        persons.first_name,
        persons.patronymic,
        persons.birthday,
        persons.phone,
        coalesce(persons.phone_invalid, false) as phone_invalid,
        nullif(trim(patients.card_number), '') as card_number,
        nullif(trim(patients.patient_number), '') as patient_number,
        patients.first_consultation_at,
        patients.first_treat_at,
        patients.changed_at,
        patients.is_deleted,
        -- The latest bronze load of the patient's rows: the reception chain's incremental builds redo
        -- the receptions of a patient loaded after their high-water mark.
        greatest(patients.loaded_at, persons.loaded_at) as loaded_at
    from patients
    left join persons
        on
            patients.source_db = persons.source_db
            and patients.patient_id = persons.person_id

)

select * from final

{{
    config(
        alias='ident_staff',
    )
}}
-- silver.ident_staff: one row per staff member per database (Staffs.ID_Persons = Persons.ID) with the
-- name and the speciality: the names of the member's live professions (Items → ProfessionNames), sorted
-- and joined with ", ".
with

staffs as (

    select * from {{ ref('stg_ident__staffs') }}

),

persons as (

    select * from {{ ref('stg_ident__persons') }}
    where not is_deleted

),

professions as (

    select
        items.source_db,
        items.staff_id,
        nullif(array_join(
            array_sort(array_distinct(collect_list(nullif(trim(profession_names.profession_name), '')))),
            ', '
        ), '') as speciality
    from {{ ref('stg_ident__items') }} as items
    inner join {{ ref('stg_ident__profession_names') }} as profession_names
        on
            items.source_db = profession_names.source_db
            and items.profession_id = profession_names.profession_id
    where not items.is_deleted and not profession_names.is_deleted and not profession_names.is_archived
    group by items.source_db, items.staff_id

),

final as (

    select
        staffs.source_db,
        staffs.staff_id,
        persons.full_name,
        professions.speciality,
        staffs.is_archived,
        staffs.is_deleted
    from staffs
    left join persons
        on
            staffs.source_db = persons.source_db
            and staffs.staff_id = persons.person_id
    left join professions
        on
            staffs.source_db = professions.source_db
            and staffs.staff_id = professions.staff_id

)

select * from final

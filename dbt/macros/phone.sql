{#-
  Phone numbers shared by every source that carries them (amoCRM contacts, iDent persons): the rules live
  here once, the source macros (amocrm_phone_e164, …) only name them.
-#}

{#-
  A phone number in E.164 for Kazakhstan/Russia (+7 and 10 digits), or null. Accepted: digits with
  spaces, brackets, dots and dashes, written as +7XXXXXXXXXX, 8XXXXXXXXXX, 7XXXXXXXXXX or the 10 digits
  7XXXXXXXXX (a Kazakh number without the country code). Anything else is not a phone (phone_is_invalid
  tells an invalid value from an empty one).
-#}
{% macro phone_e164(col) -%}
    case
        when not trim({{ col }}) rlike '^[+]?[0-9 ().-]+$' then null
        when trim({{ col }}) like '+%'
            then case when regexp_replace({{ col }}, '[^0-9]', '') rlike '^7[0-9]{10}$'
                then concat('+', regexp_replace({{ col }}, '[^0-9]', '')) end
        when regexp_replace({{ col }}, '[^0-9]', '') rlike '^[78][0-9]{10}$'
            then concat('+7', substr(regexp_replace({{ col }}, '[^0-9]', ''), 2))
        when regexp_replace({{ col }}, '[^0-9]', '') rlike '^7[0-9]{9}$'
            then concat('+7', regexp_replace({{ col }}, '[^0-9]', ''))
    end
{%- endmacro %}

{#- A phone value was given (not blank) but is no KZ/RU number; a blank or missing value is not invalid. -#}
{% macro phone_is_invalid(col) -%}
    (nullif(trim({{ col }}), '') is not null and {{ phone_e164(col) }} is null)
{%- endmacro %}

{#-
  Kazakhstan IIN validity (12 digits; YYMMDD birth date; 7th digit = century and sex 1..6;
  check digit = weighted sum mod 11 with weights 1..11, or 3..11,1,2 when the first sum gives 10;
  a second 10 means no valid IIN can carry these digits).
  Returns null for a valid IIN, else a short reason code.
-#}
{% macro kz_iin_problem(col) -%}
case
    when {{ col }} is null or not {{ col }} rlike '^[0-9]{12}$' then 'not_12_digits'
    when cast(substr({{ col }}, 7, 1) as int) not between 1 and 6 then 'bad_century_digit'
    when try_to_timestamp(
            concat(
                cast(1800 + 100 * floor((cast(substr({{ col }}, 7, 1) as int) - 1) / 2) + cast(substr({{ col }}, 1, 2) as int) as string),
                '-', substr({{ col }}, 3, 2), '-', substr({{ col }}, 5, 2)
            ), 'yyyy-MM-dd') is null then 'bad_birth_date'
    when {{ kz_iin_check_digit(col) }} is null
        or {{ kz_iin_check_digit(col) }} != cast(substr({{ col }}, 12, 1) as int) then 'bad_check_digit'
end
{%- endmacro %}

{% macro kz_iin_check_digit(col) -%}
case
    when aggregate(sequence(1, 11), 0, (acc, i) -> acc + cast(substr({{ col }}, i, 1) as int) * i) % 11 != 10
        then aggregate(sequence(1, 11), 0, (acc, i) -> acc + cast(substr({{ col }}, i, 1) as int) * i) % 11
    when aggregate(sequence(1, 11), 0, (acc, i) -> acc + cast(substr({{ col }}, i, 1) as int) * (((i + 1) % 11) + 1)) % 11 != 10
        then aggregate(sequence(1, 11), 0, (acc, i) -> acc + cast(substr({{ col }}, i, 1) as int) * (((i + 1) % 11) + 1)) % 11
end
{%- endmacro %}

{#-
  How gold exposes an IIN (platform setting ELT_IIN_MASKING, passed as var iin_masking). 'hash': keyed
  SHA-256; Spark substitutes the key from its SQL conf spark.elt.iin_hash_key (set on the session by the
  transform from ELT_IIN_HASH_KEY; by --conf on the Thrift server), so it never appears in compiled SQL.
-#}
{% macro mask_iin(col) -%}
    {%- if var('iin_masking', 'hash') == 'clear' -%}
        {{ col }}
    {%- else -%}
        sha2(concat('${spark.elt.iin_hash_key}', ':', {{ col }}), 256)
    {%- endif -%}
{%- endmacro %}

{#-
  The one place where Alaqan's rejection codes meet the reason vocabulary of silver.alaqan_rejected.
  Keys: the codes the layers write — bronze quarantine `reason` is "<code>: <detail>" with the codes of
  elt_platform.sources.alaqan.parsing.QUARANTINE_REASONS; silver quarantine `reason` is a code of
  kz_iin_problem() (= iin.IIN_PROBLEMS) or of alaqan_validated_visits(). Values: the vocabulary
  documented in models/staging/alaqan/_alaqan__models.yml. A code missing here maps to 'unclassified',
  which the model's accepted_values test refuses (tests/plugins/sources/alaqan/test_parsing.py checks
  every parser and IIN code is listed).
-#}
{% macro alaqan_reject_reasons() -%}
    {{ return({
        'bad_iin_key': 'invalid_iin:format',
        'not_12_digits': 'invalid_iin:format',
        'bad_century_digit': 'invalid_iin:century',
        'bad_birth_date': 'invalid_iin:birth_date',
        'bad_check_digit': 'invalid_iin:checksum',
        'unknown_event': 'unknown_event',
        'bad_time': 'invalid_time',
        'events_not_array': 'malformed_record',
        'record_not_object': 'malformed_record',
        'duplicate_keys': 'malformed_record',
        'missing_keys': 'malformed_record',
        'extra_keys': 'malformed_record',
    }) }}
{%- endmacro %}

{#- The vocabulary reason of a layer's rejection text: its code is the part before the first ':'. -#}
{% macro alaqan_reject_reason(reason_text) -%}
    case trim(substring_index({{ reason_text }}, ':', 1))
    {%- for code, reason in alaqan_reject_reasons().items() %}
        when '{{ code }}' then '{{ reason }}'
    {%- endfor %}
        else 'unclassified'
    end
{%- endmacro %}

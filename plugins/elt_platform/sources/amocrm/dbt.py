"""What the sales (amoCRM) models need from the platform settings: custom-field map, time zone, masking.

``ELT_AMOCRM_FIELDS`` (JSON) says which amoCRM custom field holds each value silver extracts, by field
``id`` or by field ``code`` — accounts define their own fields, so no name is hard-coded in SQL. Keys
not given keep their defaults (:data:`DEFAULT_FIELDS`: the spec's examples and the sandbox's fields)::

    {"lead_bin": {"id": 501}, "contact_phone": {"code": "PHONE"}}

It reaches dbt as the var ``amocrm_fields`` (read by the ``amocrm_field_value`` macro).

``ELT_AMOCRM_TIMEZONE`` (default: the registry's ``SOURCE.timezone``, ``Asia/Almaty``) is the zone in
which gold's dates and months are local days and months (amoCRM sends instants, Unix seconds); dbt var
``amocrm_timezone``.

Phones and e-mails of contacts are masked per the platform's personal-data setting
(:mod:`elt_platform.pii`): the mode as the var ``pii_masking``, the key as Spark SQL conf only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

from elt_platform.config import time_zone_setting
from elt_platform.pii import pii_masking
from elt_platform.registry import DbtSettings

FIELDS_ENV = "ELT_AMOCRM_FIELDS"
FIELDS_VAR = "amocrm_fields"
TIMEZONE_ENV = "ELT_AMOCRM_TIMEZONE"
TIMEZONE_VAR = "amocrm_timezone"
MASKING_VAR = "pii_masking"

DEFAULT_FIELDS: dict[str, dict[str, int | str]] = {
    "lead_bin": {"id": 501},
    "lead_source": {"id": 502},
    "company_bin": {"id": 701},
    "company_industry": {"id": 702},
    "contact_phone": {"code": "PHONE"},
    "contact_email": {"code": "EMAIL"},
}

# A field code is quoted into SQL: letters, digits and underscores only (amoCRM's codes: PHONE, EMAIL, …).
_CODE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class AmoFieldsConfigError(ValueError):
    """``ELT_AMOCRM_FIELDS`` is not a usable field map."""


class TimezoneConfigError(ValueError):
    """``ELT_AMOCRM_TIMEZONE`` is not an IANA time zone."""


def _field_ref(key: str, ref: object) -> dict[str, int | str]:
    """One entry of the map, checked: exactly one of a positive integer ``id`` or a ``code``."""
    if not isinstance(ref, dict) or len(ref) != 1 or not ref.keys() <= {"id", "code"}:
        raise AmoFieldsConfigError(
            f'{FIELDS_ENV}: {key} must be {{"id": <field id>}} or {{"code": "<field code>"}}, got {ref!r}'
        )
    if "id" in ref:
        field_id = ref["id"]
        if isinstance(field_id, bool) or not isinstance(field_id, int) or field_id <= 0:
            raise AmoFieldsConfigError(f"{FIELDS_ENV}: {key}.id must be a positive integer, got {field_id!r}")
        return {"id": field_id}
    code = ref["code"]
    if not isinstance(code, str) or not _CODE.match(code.strip()):
        raise AmoFieldsConfigError(
            f"{FIELDS_ENV}: {key}.code must be letters, digits or underscores, got {code!r}"
        )
    return {"code": code.strip().upper()}


def amocrm_fields(env: Mapping[str, str] | None = None) -> dict[str, dict[str, int | str]]:
    """The custom-field map: :data:`DEFAULT_FIELDS` updated with ``ELT_AMOCRM_FIELDS``.

    Raises:
        AmoFieldsConfigError: not a JSON object, an unknown key, or an entry that is neither an id nor a code.
    """
    env = os.environ if env is None else env
    text = (env.get(FIELDS_ENV) or "").strip()
    if not text:
        return {key: dict(ref) for key, ref in DEFAULT_FIELDS.items()}
    try:
        given = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AmoFieldsConfigError(f"{FIELDS_ENV} is not JSON: {exc}") from exc
    if not isinstance(given, dict):
        raise AmoFieldsConfigError(f"{FIELDS_ENV} must be a JSON object of field references")
    unknown = sorted(set(given) - set(DEFAULT_FIELDS))
    if unknown:
        raise AmoFieldsConfigError(
            f"{FIELDS_ENV}: unknown key(s) {unknown}; expected some of {sorted(DEFAULT_FIELDS)}"
        )
    return {key: _field_ref(key, given.get(key, DEFAULT_FIELDS[key])) for key in DEFAULT_FIELDS}


def amocrm_timezone(env: Mapping[str, str] | None = None) -> str:
    """The IANA zone of gold's local dates: ``ELT_AMOCRM_TIMEZONE``, else ``SOURCE.timezone`` (registry).

    Raises:
        TimezoneConfigError: not a zone the time zone database knows (it is quoted into SQL).
    """
    from elt_platform.sources.amocrm.pipeline import SOURCE

    env = os.environ if env is None else env
    return time_zone_setting(env, TIMEZONE_ENV, SOURCE.timezone, error=TimezoneConfigError)


def _describe(fields: Mapping[str, Mapping[str, int | str]]) -> str:
    return ", ".join(
        f"{key}={'id ' if 'id' in ref else 'code '}{next(iter(ref.values()))}" for key, ref in fields.items()
    )


def dbt_settings(env: Mapping[str, str] | None = None) -> DbtSettings:
    """dbt vars and Spark conf of the sales domain.

    Raises:
        AmoFieldsConfigError: ``ELT_AMOCRM_FIELDS`` is unusable.
        TimezoneConfigError: ``ELT_AMOCRM_TIMEZONE`` is not a time zone.
        elt_platform.pii.MaskingConfigError: unknown masking mode, or no hash key in production.
    """
    env = os.environ if env is None else env
    fields = amocrm_fields(env)
    zone = amocrm_timezone(env)
    masking = pii_masking(env)
    return DbtSettings(
        vars={FIELDS_VAR: fields, TIMEZONE_VAR: zone, MASKING_VAR: masking.mode},
        spark_conf=masking.spark_conf,
        summary={
            "amoCRM fields": _describe(fields),
            "amoCRM time zone": zone,
            "PII masking": masking.summary,
        },
    )

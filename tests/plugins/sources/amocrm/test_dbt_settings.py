"""The sales models' settings: the custom-field map (``ELT_AMOCRM_FIELDS``), the time zone
(``ELT_AMOCRM_TIMEZONE``) and the platform's personal-data masking; the hash key never travels as a
dbt var."""

from __future__ import annotations

import json
import re

import pytest

from elt_platform.config import REPO_ROOT
from elt_platform.sources.amocrm.dbt import (
    DEFAULT_FIELDS,
    AmoFieldsConfigError,
    TimezoneConfigError,
    dbt_settings,
)
from elt_platform.sources.amocrm.pipeline import SOURCE

MACROS = REPO_ROOT / "dbt" / "macros" / "amocrm.sql"


def test_the_defaults_are_the_spec_fields_and_masking_hashes():
    settings = dbt_settings({"ELT_PII_HASH_KEY": "k-123"})
    assert settings.vars == {
        "amocrm_fields": {
            "lead_bin": {"id": 501},
            "lead_source": {"id": 502},
            "company_bin": {"id": 701},
            "company_industry": {"id": 702},
            "contact_phone": {"code": "PHONE"},
            "contact_email": {"code": "EMAIL"},
        },
        "amocrm_timezone": "Asia/Almaty",
        "pii_masking": "hash",
    }
    assert settings.spark_conf == {"spark.elt.iin_hash_key": "k-123"}
    assert "k-123" not in repr(settings.vars) + repr(settings.summary)
    assert settings.summary["PII masking"] == "hash (key: ELT_PII_HASH_KEY)"


def test_given_fields_replace_their_defaults_only():
    env = {
        "ELT_PII_MASKING": "clear",
        "ELT_AMOCRM_FIELDS": json.dumps({"lead_bin": {"code": "bin"}, "contact_phone": {"id": 601}}),
    }
    fields = dbt_settings(env).vars["amocrm_fields"]
    assert fields == {**DEFAULT_FIELDS, "lead_bin": {"code": "BIN"}, "contact_phone": {"id": 601}}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"lead_bim": {"id": 501}}', r"unknown key\(s\) \['lead_bim'\]"),
        ('{"lead_bin": 501}', "lead_bin must be"),
        ('{"lead_bin": {"id": 501, "code": "BIN"}}', "lead_bin must be"),
        ('{"lead_bin": {"name": "БИН"}}', "lead_bin must be"),
        ('{"lead_bin": {"id": "501"}}', "lead_bin.id must be a positive integer"),
        ('{"lead_bin": {"id": true}}', "lead_bin.id must be a positive integer"),
        ('{"lead_bin": {"id": 0}}', "lead_bin.id must be a positive integer"),
        ('{"contact_phone": {"code": "PHONE\'; drop table x; --"}}', "contact_phone.code must be"),
    ],
)
def test_an_unusable_field_map_is_refused(value, message):
    # Ids and codes end up in SQL: only integers and plain codes may pass.
    with pytest.raises(AmoFieldsConfigError, match=message):
        dbt_settings({"ELT_PII_MASKING": "clear", "ELT_AMOCRM_FIELDS": value})


def test_the_time_zone_defaults_to_the_registry_and_comes_from_the_environment():
    assert SOURCE.timezone == "Asia/Almaty"
    assert dbt_settings({"ELT_PII_MASKING": "clear"}).vars["amocrm_timezone"] == SOURCE.timezone
    settings = dbt_settings({"ELT_PII_MASKING": "clear", "ELT_AMOCRM_TIMEZONE": " Asia/Aqtobe "})
    assert settings.vars["amocrm_timezone"] == "Asia/Aqtobe"
    assert settings.summary["amoCRM time zone"] == "Asia/Aqtobe"


@pytest.mark.parametrize("zone", ["Asia/Nowhere", "+05:00", "Asia/Almaty'; drop table x; --"])
def test_a_zone_the_database_does_not_know_is_refused(zone):
    with pytest.raises(TimezoneConfigError, match="ELT_AMOCRM_TIMEZONE"):
        dbt_settings({"ELT_PII_MASKING": "clear", "ELT_AMOCRM_TIMEZONE": zone})


def test_the_legacy_masking_names_still_work():
    settings = dbt_settings({"ELT_IIN_MASKING": "clear"})
    assert (settings.vars["pii_masking"], settings.spark_conf) == ("clear", {})


def test_the_dbt_fallbacks_match_the_settings_defaults():
    # Runs that pass no vars (make dbt-build) fall back to the macros' defaults: they must not drift.
    macros = MACROS.read_text(encoding="utf-8")
    assert re.findall(r"var\('amocrm_timezone', '([^']+)'\)", macros) == [SOURCE.timezone]
    (fields,) = re.findall(r"set defaults = fromjson\('([^']+)'\)", macros)
    assert json.loads(fields) == DEFAULT_FIELDS

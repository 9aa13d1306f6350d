"""IIN masking (the platform's personal-data setting, ``ELT_PII_MASKING``, formerly ``ELT_IIN_MASKING``) and
the source's time zone (``ELT_ALAQAN_TIMEZONE``) are platform settings; the hash key never travels as a dbt
var."""

from __future__ import annotations

import logging
import re

import pytest

from elt_platform.config import REPO_ROOT
from elt_platform.pii import DEV_HASH_KEY, MaskingConfigError
from elt_platform.sources.alaqan.dbt import TimezoneConfigError, dbt_settings
from elt_platform.sources.alaqan.pipeline import SOURCE


@pytest.mark.parametrize("key_env", ["ELT_PII_HASH_KEY", "ELT_IIN_HASH_KEY"])
def test_hash_is_the_default_and_the_key_goes_to_spark_conf_only(key_env):
    settings = dbt_settings({key_env: "k-123"})
    assert settings.vars == {"iin_masking": "hash", "alaqan_timezone": "Asia/Almaty"}
    assert settings.spark_conf == {"spark.elt.iin_hash_key": "k-123"}
    assert "k-123" not in repr(settings.vars) + repr(settings.summary)
    assert settings.summary == {
        "IIN masking": f"hash (key: {key_env})",
        "Alaqan time zone": "Asia/Almaty",
    }


@pytest.mark.parametrize("mode_env", ["ELT_PII_MASKING", "ELT_IIN_MASKING"])
@pytest.mark.parametrize("value", ["clear", "CLEAR", " clear "])
def test_clear_needs_no_key(mode_env, value):
    settings = dbt_settings({mode_env: value})
    assert (settings.vars["iin_masking"], settings.spark_conf) == ("clear", {})


def test_embedded_without_a_key_hashes_with_the_development_key_and_warns(caplog):
    with caplog.at_level(logging.WARNING):
        settings = dbt_settings({})
    assert settings.spark_conf == {"spark.elt.iin_hash_key": DEV_HASH_KEY}
    assert "ELT_PII_HASH_KEY (or ELT_IIN_HASH_KEY) is not set" in caplog.text


def test_production_without_a_key_is_an_error():
    with pytest.raises(MaskingConfigError, match="production profile needs a key"):
        dbt_settings({"ELT_PROFILE": "production"})


def test_an_unknown_mode_is_refused():
    with pytest.raises(MaskingConfigError, match="ELT_PII_MASKING='sha1'"):
        dbt_settings({"ELT_PII_MASKING": "sha1"})


def test_the_time_zone_defaults_to_the_registry_declaration():
    assert SOURCE.timezone == "Asia/Almaty"
    assert dbt_settings({"ELT_IIN_MASKING": "clear"}).vars["alaqan_timezone"] == SOURCE.timezone


def test_the_time_zone_comes_from_the_environment():
    settings = dbt_settings({"ELT_IIN_MASKING": "clear", "ELT_ALAQAN_TIMEZONE": " Asia/Aqtobe "})
    assert settings.vars == {"iin_masking": "clear", "alaqan_timezone": "Asia/Aqtobe"}
    assert settings.summary["Alaqan time zone"] == "Asia/Aqtobe"


@pytest.mark.parametrize(
    "zone", ["Asia/Nowhere", "+05:00", "../etc/passwd", "Asia/Almaty'; drop table x; --"]
)
def test_a_zone_the_database_does_not_know_is_refused(zone):
    # The zone is quoted into SQL: only real zone names may pass.
    with pytest.raises(TimezoneConfigError, match="ELT_ALAQAN_TIMEZONE"):
        dbt_settings({"ELT_IIN_MASKING": "clear", "ELT_ALAQAN_TIMEZONE": zone})


def test_the_dbt_fallback_zone_is_the_registry_zone():
    # Runs that pass no vars (make dbt-build) fall back to the macro's default: it must not drift.
    macro = (REPO_ROOT / "dbt" / "macros" / "alaqan_time.sql").read_text(encoding="utf-8")
    assert re.findall(r"var\('alaqan_timezone', '([^']+)'\)", macro) == [SOURCE.timezone]

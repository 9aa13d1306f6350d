"""IIN masking is a platform setting (``ELT_IIN_MASKING``), and the hash key never travels as a dbt var."""

from __future__ import annotations

import logging

import pytest

from elt_platform.sources.alaqan.dbt import DEV_HASH_KEY, MaskingConfigError, dbt_settings


def test_hash_is_the_default_and_the_key_goes_to_spark_conf_only():
    settings = dbt_settings({"ELT_IIN_HASH_KEY": "k-123"})
    assert settings.vars == {"iin_masking": "hash"}
    assert settings.spark_conf == {"spark.elt.iin_hash_key": "k-123"}
    assert "k-123" not in repr(settings.vars) + repr(settings.summary)
    assert settings.summary == {"IIN masking": "hash (key: ELT_IIN_HASH_KEY)"}


@pytest.mark.parametrize("value", ["clear", "CLEAR", " clear "])
def test_clear_needs_no_key(value):
    settings = dbt_settings({"ELT_IIN_MASKING": value})
    assert (settings.vars, settings.spark_conf) == ({"iin_masking": "clear"}, {})


def test_embedded_without_a_key_hashes_with_the_development_key_and_warns(caplog):
    with caplog.at_level(logging.WARNING):
        settings = dbt_settings({})
    assert settings.spark_conf == {"spark.elt.iin_hash_key": DEV_HASH_KEY}
    assert "ELT_IIN_HASH_KEY is not set" in caplog.text


def test_production_without_a_key_is_an_error():
    with pytest.raises(MaskingConfigError, match="production profile needs a key"):
        dbt_settings({"ELT_PROFILE": "production"})


def test_an_unknown_mode_is_refused():
    with pytest.raises(MaskingConfigError, match="ELT_IIN_MASKING='sha1'"):
        dbt_settings({"ELT_IIN_MASKING": "sha1"})

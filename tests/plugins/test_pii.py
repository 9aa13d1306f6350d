"""Personal-data masking is one platform setting (``ELT_PII_MASKING`` / ``ELT_PII_HASH_KEY``, the older
``ELT_IIN_*`` names still accepted); the key travels as Spark conf only."""

from __future__ import annotations

import logging

import pytest

from elt_platform.pii import DEV_HASH_KEY, HASH_KEY_CONF, MaskingConfigError, masking_mode, pii_masking


def test_hash_is_the_default_and_the_key_stays_out_of_repr_and_summary():
    masking = pii_masking({"ELT_PII_HASH_KEY": "k-123"})
    assert (masking.mode, masking.spark_conf) == ("hash", {"spark.elt.iin_hash_key": "k-123"})
    assert masking.summary == "hash (key: ELT_PII_HASH_KEY)"
    assert "k-123" not in repr(masking) + masking.summary


def test_the_conf_name_is_the_one_the_macros_read():
    assert HASH_KEY_CONF == "spark.elt.iin_hash_key"


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, "hash"),
        ({"ELT_PII_MASKING": " CLEAR "}, "clear"),
        ({"ELT_IIN_MASKING": "clear"}, "clear"),
        ({"ELT_PII_MASKING": "hash", "ELT_IIN_MASKING": "clear"}, "hash"),
        ({"ELT_PII_MASKING": "", "ELT_IIN_MASKING": "clear"}, "clear"),
    ],
)
def test_the_mode_prefers_the_new_name_and_accepts_the_old_one(env, mode):
    assert masking_mode(env) == mode


@pytest.mark.parametrize(
    ("env", "source"),
    [
        ({"ELT_PII_HASH_KEY": "new"}, "ELT_PII_HASH_KEY"),
        ({"ELT_IIN_HASH_KEY": "old"}, "ELT_IIN_HASH_KEY"),
        ({"ELT_PII_HASH_KEY": "new", "ELT_IIN_HASH_KEY": "old"}, "ELT_PII_HASH_KEY"),
    ],
)
def test_the_key_prefers_the_new_name_and_accepts_the_old_one(env, source):
    masking = pii_masking(env)
    assert masking.key_source == source
    assert masking.spark_conf == {HASH_KEY_CONF: env.get("ELT_PII_HASH_KEY") or env["ELT_IIN_HASH_KEY"]}


def test_clear_needs_no_key_and_sets_no_conf():
    masking = pii_masking({"ELT_PII_MASKING": "clear", "ELT_PROFILE": "production"})
    assert (masking.mode, masking.key, masking.spark_conf, masking.summary) == ("clear", None, {}, "clear")


def test_embedded_without_a_key_uses_the_development_key_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="elt_platform.pii"):
        masking = pii_masking({})
    assert masking.spark_conf == {HASH_KEY_CONF: DEV_HASH_KEY}
    assert masking.summary == "hash (key: development key)"
    assert [r.getMessage() for r in caplog.records] == [
        "ELT_PII_HASH_KEY (or ELT_IIN_HASH_KEY) is not set: personal data is hashed with the development key"
    ]


def test_production_without_a_key_is_an_error():
    with pytest.raises(MaskingConfigError, match="production profile needs a key"):
        pii_masking({"ELT_PROFILE": "production"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ELT_PII_MASKING": "sha1"}, "ELT_PII_MASKING='sha1'"),
        ({"ELT_IIN_MASKING": "mask"}, "ELT_IIN_MASKING='mask'"),
    ],
)
def test_an_unknown_mode_is_refused_naming_the_variable(env, message):
    with pytest.raises(MaskingConfigError, match=message):
        masking_mode(env)

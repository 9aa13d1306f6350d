"""What the attendance models need from the platform settings: IIN masking, hash key and time zone.

How gold shows IINs is the platform's personal-data setting (:mod:`elt_platform.pii`: ``ELT_PII_MASKING``
``hash``/``clear`` and ``ELT_PII_HASH_KEY``, the older ``ELT_IIN_MASKING`` / ``ELT_IIN_HASH_KEY`` still
accepted). The mode reaches dbt as the var ``iin_masking``; the key only as Spark SQL conf
(``spark.elt.iin_hash_key``, read by the ``mask_iin`` macro), so it never appears in compiled SQL or logs.

``ELT_ALAQAN_TIMEZONE`` (default: the registry's ``SOURCE.timezone``, ``Asia/Almaty``) is the IANA zone of
Alaqan's wall-clock times; it reaches dbt as the var ``alaqan_timezone``, from which silver computes the UTC
instants (``event_at_utc``) of the local times it stores as ``TIMESTAMP_NTZ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from elt_platform.config import time_zone_setting
from elt_platform.pii import pii_masking
from elt_platform.registry import DbtSettings

TIMEZONE_ENV = "ELT_ALAQAN_TIMEZONE"
TIMEZONE_VAR = "alaqan_timezone"


class TimezoneConfigError(ValueError):
    """``ELT_ALAQAN_TIMEZONE`` is not an IANA time zone."""


def alaqan_timezone(env: Mapping[str, str] | None = None) -> str:
    """The IANA zone of Alaqan's local times: ``ELT_ALAQAN_TIMEZONE``, else ``SOURCE.timezone`` (registry).

    Raises:
        TimezoneConfigError: not a zone the time zone database knows (it ends up quoted in SQL, so
            nothing but a real zone name may pass).
    """
    from elt_platform.sources.alaqan.pipeline import SOURCE

    env = os.environ if env is None else env
    return time_zone_setting(env, TIMEZONE_ENV, SOURCE.timezone, error=TimezoneConfigError)


def dbt_settings(env: Mapping[str, str] | None = None) -> DbtSettings:
    """dbt vars and Spark conf of the attendance domain.

    Raises:
        elt_platform.pii.MaskingConfigError: unknown mode, or ``hash`` without a key in production.
        TimezoneConfigError: ``ELT_ALAQAN_TIMEZONE`` is not a time zone.
    """
    env = os.environ if env is None else env
    masking = pii_masking(env)
    zone = alaqan_timezone(env)
    return DbtSettings(
        vars={"iin_masking": masking.mode, TIMEZONE_VAR: zone},
        spark_conf=masking.spark_conf,
        summary={"IIN masking": masking.summary, "Alaqan time zone": zone},
    )

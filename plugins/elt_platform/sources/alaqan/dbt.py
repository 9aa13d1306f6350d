"""What the attendance models need from the platform settings: IIN masking, hash key and time zone.

``ELT_IIN_MASKING`` (``hash`` default, or ``clear``) says how gold shows IINs; ``hash`` is a keyed
SHA-256 with ``ELT_IIN_HASH_KEY``. The key reaches Spark as session SQL conf (``spark.elt.iin_hash_key``,
read by the ``mask_iin`` macro as ``${spark.elt.iin_hash_key}``), so it never appears in compiled SQL, logs
or the environment of other processes. Embedded runs without a key hash with a development key and
warn; the production profile refuses to run without one.

``ELT_ALAQAN_TIMEZONE`` (default: the registry's ``SOURCE.timezone``, ``Asia/Almaty``) is the IANA zone of
Alaqan's wall-clock times; it reaches dbt as the var ``alaqan_timezone``, from which silver computes the UTC
instants (``event_at_utc``) of the local times it stores as ``TIMESTAMP_NTZ``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from elt_platform.config import PlatformConfig
from elt_platform.registry import DbtSettings

log = logging.getLogger(__name__)

MASKING_ENV = "ELT_IIN_MASKING"
HASH_KEY_ENV = "ELT_IIN_HASH_KEY"
MASKING_MODES = ("hash", "clear")
HASH_KEY_CONF = "spark.elt.iin_hash_key"
DEV_HASH_KEY = "embedded-development-key"
TIMEZONE_ENV = "ELT_ALAQAN_TIMEZONE"
TIMEZONE_VAR = "alaqan_timezone"


class TimezoneConfigError(ValueError):
    """``ELT_ALAQAN_TIMEZONE`` is not an IANA time zone."""


class MaskingConfigError(ValueError):
    """The IIN masking settings are unusable (unknown mode, no key in production)."""


def iin_masking(env: Mapping[str, str] | None = None) -> str:
    """The configured masking mode.

    Raises:
        MaskingConfigError: not one of :data:`MASKING_MODES`.
    """
    env = os.environ if env is None else env
    mode = (env.get(MASKING_ENV) or "hash").strip().lower()
    if mode not in MASKING_MODES:
        raise MaskingConfigError(f"{MASKING_ENV}={mode!r}: expected one of {', '.join(MASKING_MODES)}")
    return mode


def alaqan_timezone(env: Mapping[str, str] | None = None) -> str:
    """The IANA zone of Alaqan's local times: ``ELT_ALAQAN_TIMEZONE``, else ``SOURCE.timezone`` (registry).

    Raises:
        TimezoneConfigError: not a zone the time zone database knows (it ends up quoted in SQL, so
            nothing but a real zone name may pass).
    """
    from elt_platform.sources.alaqan.pipeline import SOURCE

    env = os.environ if env is None else env
    zone = (env.get(TIMEZONE_ENV) or "").strip() or SOURCE.timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimezoneConfigError(
            f"{TIMEZONE_ENV}={zone!r}: not an IANA time zone (e.g. Asia/Almaty)"
        ) from exc
    return zone


def dbt_settings(env: Mapping[str, str] | None = None) -> DbtSettings:
    """dbt vars and Spark conf of the attendance domain.

    Raises:
        MaskingConfigError: unknown mode, or ``hash`` without a key in the production profile.
        TimezoneConfigError: ``ELT_ALAQAN_TIMEZONE`` is not a time zone.
    """
    env = os.environ if env is None else env
    mode = iin_masking(env)
    zone = alaqan_timezone(env)
    conf: dict[str, str] = {}
    key_source = "-"
    if mode == "hash":
        key = env.get(HASH_KEY_ENV)
        key_source = HASH_KEY_ENV
        if not key:
            if PlatformConfig.from_env(dict(env)).profile != "embedded":
                raise MaskingConfigError(
                    f"{HASH_KEY_ENV} is not set: the production profile needs a key to hash IINs "
                    f"(or set {MASKING_ENV}=clear)"
                )
            log.warning("%s is not set: gold IINs are hashed with the development key", HASH_KEY_ENV)
            key, key_source = DEV_HASH_KEY, "development key"
        conf[HASH_KEY_CONF] = key
    return DbtSettings(
        vars={"iin_masking": mode, TIMEZONE_VAR: zone},
        spark_conf=conf,
        summary={
            "IIN masking": mode if mode == "clear" else f"hash (key: {key_source})",
            "Alaqan time zone": zone,
        },
    )

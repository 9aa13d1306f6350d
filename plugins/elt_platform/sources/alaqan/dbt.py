"""What the attendance models need from the platform settings: the IIN masking mode and hash key.

``ELT_IIN_MASKING`` (``hash`` default, or ``clear``) says how gold shows IINs; ``hash`` is a keyed
SHA-256 with ``ELT_IIN_HASH_KEY``. The key reaches Spark as session SQL conf (``spark.elt.iin_hash_key``,
read by the ``mask_iin`` macro as ``${spark.elt.iin_hash_key}``), so it never appears in compiled SQL, logs
or the environment of other processes. Embedded runs without a key hash with a development key and
warn; the production profile refuses to run without one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from elt_platform.config import PlatformConfig
from elt_platform.registry import DbtSettings

log = logging.getLogger(__name__)

MASKING_ENV = "ELT_IIN_MASKING"
HASH_KEY_ENV = "ELT_IIN_HASH_KEY"
MASKING_MODES = ("hash", "clear")
HASH_KEY_CONF = "spark.elt.iin_hash_key"
DEV_HASH_KEY = "embedded-development-key"


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


def dbt_settings(env: Mapping[str, str] | None = None) -> DbtSettings:
    """dbt vars and Spark conf of the attendance domain.

    Raises:
        MaskingConfigError: unknown mode, or ``hash`` without a key in the production profile.
    """
    env = os.environ if env is None else env
    mode = iin_masking(env)
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
        vars={"iin_masking": mode},
        spark_conf=conf,
        summary={"IIN masking": mode if mode == "clear" else f"hash (key: {key_source})"},
    )

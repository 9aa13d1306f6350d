"""Personal-data masking: one platform setting for every domain that shows personal data.

``ELT_PII_MASKING`` (``hash`` default, or ``clear``) says how silver and gold show personal data (IINs,
phones, e-mails); ``hash`` is a keyed SHA-256 with ``ELT_PII_HASH_KEY``. The older names
``ELT_IIN_MASKING`` / ``ELT_IIN_HASH_KEY`` are still accepted; the new name wins when both are set.

The key reaches Spark as session SQL conf ``spark.elt.iin_hash_key`` (the name kept from the first
domain that needed it; the dbt macros ``mask_iin`` and ``mask_pii`` read it as
``${spark.elt.iin_hash_key}``), so it never appears in compiled SQL, logs or dbt vars. Embedded runs
without a key hash with a development key and warn; any other profile (``ELT_PROFILE=production``)
refuses to run without one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from elt_platform.config import PlatformConfig

log = logging.getLogger(__name__)

MASKING_ENV = "ELT_PII_MASKING"
LEGACY_MASKING_ENV = "ELT_IIN_MASKING"
HASH_KEY_ENV = "ELT_PII_HASH_KEY"
LEGACY_HASH_KEY_ENV = "ELT_IIN_HASH_KEY"
MASKING_MODES = ("hash", "clear")
HASH_KEY_CONF = "spark.elt.iin_hash_key"
DEV_HASH_KEY = "embedded-development-key"
DEV_KEY_SOURCE = "development key"


class MaskingConfigError(ValueError):
    """The masking settings are unusable (unknown mode, no key outside the embedded profile)."""


@dataclass(frozen=True)
class PiiMasking:
    """The resolved masking settings.

    Attributes:
        mode: ``hash`` or ``clear``.
        key: the hash key (None in ``clear`` mode); never shown in ``repr``.
        key_source: where the key came from: the variable's name, ``development key``, or ``-``.
    """

    mode: str
    key: str | None = field(default=None, repr=False)
    key_source: str = "-"

    @property
    def spark_conf(self) -> dict[str, str]:
        """Spark SQL conf carrying the key (empty in ``clear`` mode)."""
        return {HASH_KEY_CONF: self.key} if self.key else {}

    @property
    def summary(self) -> str:
        """What run summaries print: the mode and where the key came from, never the key."""
        return self.mode if self.mode == "clear" else f"hash (key: {self.key_source})"


def _setting(env: Mapping[str, str], name: str, legacy: str) -> tuple[str, str]:
    """``(variable used, stripped value)``: ``name`` when set, else ``legacy``, else ``(name, "")``."""
    for variable in (name, legacy):
        value = (env.get(variable) or "").strip()
        if value:
            return variable, value
    return name, ""


def masking_mode(env: Mapping[str, str] | None = None) -> str:
    """The configured masking mode (``ELT_PII_MASKING``, else ``ELT_IIN_MASKING``, else ``hash``).

    Raises:
        MaskingConfigError: not one of :data:`MASKING_MODES`.
    """
    env = os.environ if env is None else env
    variable, value = _setting(env, MASKING_ENV, LEGACY_MASKING_ENV)
    mode = value.lower() or "hash"
    if mode not in MASKING_MODES:
        raise MaskingConfigError(f"{variable}={mode!r}: expected one of {', '.join(MASKING_MODES)}")
    return mode


def pii_masking(env: Mapping[str, str] | None = None) -> PiiMasking:
    """The masking mode with its key.

    Raises:
        MaskingConfigError: unknown mode, or ``hash`` without a key outside the embedded profile.
    """
    env = os.environ if env is None else env
    mode = masking_mode(env)
    if mode == "clear":
        return PiiMasking(mode)
    variable, key = _setting(env, HASH_KEY_ENV, LEGACY_HASH_KEY_ENV)
    if key:
        return PiiMasking(mode, key, variable)
    if PlatformConfig.from_env(dict(env)).profile != "embedded":
        raise MaskingConfigError(
            f"{HASH_KEY_ENV} (or {LEGACY_HASH_KEY_ENV}) is not set: the production profile needs a key "
            f"to hash personal data (or set {MASKING_ENV}=clear)"
        )
    log.warning(
        "%s (or %s) is not set: personal data is hashed with the development key",
        HASH_KEY_ENV,
        LEGACY_HASH_KEY_ENV,
    )
    return PiiMasking(mode, DEV_HASH_KEY, DEV_KEY_SOURCE)

"""The ODBC layer of the iDent sandbox: unixODBC and psqlODBC, the driver the extract reaches Postgres by.

The extract talks ODBC through pyodbc to SQL Server in production (Microsoft's driver or FreeTDS); in the
sandbox the same code reaches PostgreSQL through psqlODBC, so only the connection string differs. Debian's
``odbc-postgresql`` package registers the driver in ``/etc/odbcinst.ini`` as ``PostgreSQL Unicode``;
nothing else is registered (no DSN): connection strings name the driver.
"""

from __future__ import annotations

import os
import shutil
import subprocess

#: The name ``odbc-postgresql`` gives the Unicode (UTF-16 wide-char) psqlODBC driver in odbcinst.ini.
DRIVER = "PostgreSQL Unicode"
APT_PACKAGES = ("unixodbc", "odbc-postgresql")


class DriverMissingError(RuntimeError):
    """psqlODBC is not installed and cannot be installed from here."""


def driver_installed(driver: str = DRIVER) -> bool:
    """Whether unixODBC knows ``driver`` (pyodbc's view of odbcinst.ini)."""
    import pyodbc

    return driver in pyodbc.drivers()


def ensure_driver(driver: str = DRIVER, *, timeout: float = 600) -> str:
    """Install unixODBC and psqlODBC with apt-get when the driver is missing; return the driver name.

    Args:
        driver: the odbcinst.ini name to look for.
        timeout: seconds allowed for the whole apt-get install.

    Raises:
        DriverMissingError: not root, no apt-get, or the install did not register the driver.
    """
    if driver_installed(driver):
        return driver
    command = ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DriverMissingError(
            f"ODBC driver {driver!r} is missing: install it with `sudo {' '.join(command)}` "
            "(or run plugins/elt_platform/sandbox/ident/install.sh as root)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0 and "Unable to locate package" in result.stderr:
        # A fresh container has no package lists yet: fetch them once and retry.
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=timeout, check=False)
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    if result.returncode != 0 or not driver_installed(driver):
        raise DriverMissingError(f"`{' '.join(command)}` did not provide {driver!r}: {result.stderr[-1500:]}")
    return driver

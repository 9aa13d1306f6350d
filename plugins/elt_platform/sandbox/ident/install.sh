#!/usr/bin/env bash
# Install unixODBC and psqlODBC (odbcinst.ini name "PostgreSQL Unicode") for the iDent sandbox.
# Idempotent; registers no DSN. Needs root (apt-get); otherwise prints what to install.
set -euo pipefail
packages=(unixodbc odbc-postgresql)
if odbcinst -q -d -n "PostgreSQL Unicode" >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "iDent sandbox: install the ODBC driver as root: sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null \
  || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null; }
odbcinst -q -d -n "PostgreSQL Unicode" >/dev/null

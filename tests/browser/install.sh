#!/usr/bin/env bash
# Install headless Chromium and its WebDriver (Debian packages) for the browser tests (tests/browser/).
# Idempotent. Needs root (apt-get); otherwise prints what to install.
set -euo pipefail
packages=(chromium chromium-driver)
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "browser tests: install Chromium as root: sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null \
  || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${packages[@]}" >/dev/null; }
/usr/bin/chromedriver --version >/dev/null

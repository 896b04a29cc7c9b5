#!/usr/bin/env bash
# Install Debian's headless Chromium for the browser tests of molexp-server.
#
# The browser tests drive /usr/bin/chromium with Playwright for Python (the `playwright` package
# from PyPI, installed by hatch.toml) through its `executable_path`; Playwright's own browser
# download (`playwright install`) is never used. This script is idempotent: it does nothing when
# chromium is already there, and it needs root (CI and the development machines run as root).
# The test suite runs it by itself (packages/molexp-server/tests/browser/conftest.py) when
# chromium is missing and the user is root.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "setup_chromium: $(command -v chromium) is already installed"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "setup_chromium: chromium is missing and this is not root; run as root:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "setup_chromium: installed $(chromium --version 2>/dev/null || echo chromium)"

#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed at /usr/bin/chromium, so the browser tests (test/ui/) can drive it with
# playwright-core. Idempotent: does nothing when it is already there. Debian/Ubuntu (apt-get); run as root.
set -euo pipefail

if [ ! -x /usr/bin/chromium ]; then
  echo "chromium: installing Debian's chromium package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "chromium: /usr/bin/chromium still missing after installing chromium" >&2; exit 1; }
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'installed')"

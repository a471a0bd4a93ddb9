#!/usr/bin/env bash
# Installs Python's `jwcrypto` (PyPI), the independent JOSE implementation with which test/pipeline/payload-encryption
# decrypts the JWE deliveries of endpoints that hold encryption keys. Idempotent: returns at once when it imports.
set -euo pipefail

probe() { python3 -c 'import jwcrypto.jwe, jwcrypto.jwk' 2>/dev/null; }
version() { python3 -c 'import importlib.metadata as m; print(m.version("jwcrypto"))'; }

if probe; then
  echo "jwcrypto.sh: already installed (jwcrypto $(version))"
  exit 0
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi; }

if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-pip ca-certificates >/dev/null
  else
    echo "jwcrypto.sh: python3 with pip is needed (no apt-get here to install it)" >&2
    exit 1
  fi
fi

pip_install() { PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check "$@" 'jwcrypto>=1.5,<2'; }
if ! out=$(pip_install 2>&1); then
  # Debian 12+ marks the system Python as externally managed (PEP 668); this machine is a CI box.
  if grep -q externally-managed <<<"$out"; then
    pip_install --break-system-packages
  else
    echo "$out" >&2
    exit 1
  fi
fi

if ! probe; then
  echo "jwcrypto.sh: installed, but jwcrypto is still not importable" >&2
  exit 1
fi
echo "jwcrypto.sh: jwcrypto $(version)"

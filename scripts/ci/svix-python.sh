#!/usr/bin/env bash
# Installs the official Svix Python SDK (PyPI `svix`, 2.x), which test/svix/python.test.ts drives against a real
# hookrelay. Idempotent: returns at once when a 2.x `svix` is importable.
set -euo pipefail

probe() { python3 -c 'import sys, svix.api, importlib.metadata as m; v = m.version("svix"); sys.exit(0 if v.startswith("2.") else 1); print(v)' 2>/dev/null; }
version() { python3 -c 'import importlib.metadata as m; print(m.version("svix"))'; }

if probe; then
  echo "svix-python.sh: already installed (svix $(version))"
  exit 0
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi; }

if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-pip ca-certificates >/dev/null
  else
    echo "svix-python.sh: python3 with pip is needed (no apt-get here to install it)" >&2
    exit 1
  fi
fi

pip_install() { PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check "$@" 'svix>=2,<3'; }
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
  echo "svix-python.sh: installed, but a 2.x svix is still not importable" >&2
  exit 1
fi
echo "svix-python.sh: svix $(version)"

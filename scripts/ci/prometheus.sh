#!/usr/bin/env bash
# Makes sure a Prometheus server binary is installed, so the metrics test can scrape a running hookrelay with it
# (test/operations/metrics.test.ts starts it on loopback with a generated configuration). Idempotent: does nothing
# when `prometheus` is already on the PATH. Debian/Ubuntu (apt-get); run as root.
set -euo pipefail

if ! command -v prometheus >/dev/null 2>&1; then
  echo "prometheus: installing the Prometheus server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The Debian package also registers a service; the test does not use it and starts its own server.
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
command -v prometheus >/dev/null 2>&1 || { echo "prometheus: still not found after installing the package" >&2; exit 1; }
echo "prometheus: $(prometheus --version 2>&1 | head -n 1)"

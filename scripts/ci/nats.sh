#!/usr/bin/env bash
# Makes sure nats-server (JetStream built in, enabled with -js) is installed, for the NATS destination tests
# (test/brokers/nats.test.ts start their own server on loopback, in a temp dir, and stop it). Idempotent; starts
# nothing. Debian/Ubuntu (apt-get); run as root.
set -euo pipefail

have() { command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; }
if ! have; then
  echo "nats: installing nats-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nats-server >/dev/null
fi
have || { echo "nats: nats-server still not found after installing it" >&2; exit 1; }
echo "nats: $(PATH="$PATH:/usr/sbin" nats-server --version)"

#!/usr/bin/env bash
# Makes sure redis-server is installed, for the Redis destination tests (test/brokers/redis.test.ts start their own
# server on loopback, in a temp dir, and stop it). Idempotent; starts nothing. Debian/Ubuntu (apt-get); run as root.
# Measured on the CI image: about 6 s with nats-server (apt-get update included).
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis: installing redis-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The Debian package would start a server as a service where there is an init system; the tests do not use it.
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi
echo "redis: $(redis-server --version)"

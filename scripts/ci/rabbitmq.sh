#!/usr/bin/env bash
# Makes sure rabbitmq-server (with its Erlang runtime) is installed, for the RabbitMQ destination tests
# (test/brokers/rabbitmq.test.ts start their own node on loopback, with its own ports and Mnesia dir in a temp dir, and
# stop it). Idempotent; starts nothing. Debian/Ubuntu (apt-get); run as root.
# Measured here: about 10 s to install; a node then takes about 13 s to start on a loaded 2-core machine.
set -euo pipefail

if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  echo "rabbitmq: installing rabbitmq-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
fi
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { echo "rabbitmq: /usr/lib/rabbitmq/bin/rabbitmq-server still missing after installing it" >&2; exit 1; }
command -v epmd >/dev/null || { echo "rabbitmq: epmd (Erlang) not found" >&2; exit 1; }
echo "rabbitmq: $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo installed)"

#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, pg_ctl) are installed, so the PostgreSQL tests can start a
# throwaway cluster (test/helpers/postgres.ts). Idempotent: does nothing when they are already there, or when
# DATABASE_URL names a server to use instead. Debian/Ubuntu (apt-get); run as root.
set -euo pipefail

have_binaries() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if [ -n "${DATABASE_URL:-}" ]; then
  echo "postgres: DATABASE_URL is set; the tests use that server"
  exit 0
fi

if ! have_binaries; then
  echo "postgres: installing the PostgreSQL server binaries"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The Debian package starts a cluster of its own as a service; the tests do not use it.
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
have_binaries || { echo "postgres: initdb still not found after installing postgresql" >&2; exit 1; }

initdb=$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
echo "postgres: $("$initdb" --version)"
# The test harness runs the server as the "postgres" user when it runs as root; the package creates that user.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  echo "postgres: running as root but there is no postgres user to run the server as" >&2
  exit 1
fi

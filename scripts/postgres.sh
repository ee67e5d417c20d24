#!/usr/bin/env bash
# The PostgreSQL server binaries the store's tests run a throw-away server of
# (src/testing/postgres/): installs Debian's postgresql-15 with apt-get when
# /usr/lib/postgresql/15/bin has no initdb and postgres. The package's own cluster is not
# used: the tests run `initdb` into temp directories and start `postgres` on a unix socket
# there. Not needed when VCM_TEST_POSTGRES_URL names a server the tests may use, or when
# VCM_POSTGRES_BIN_DIR names other binaries.
#
#   scripts/postgres.sh      install if missing, print the binaries' directory
set -euo pipefail

log() { echo "postgres: $*" >&2; }
BIN=${VCM_POSTGRES_BIN_DIR:-/usr/lib/postgresql/15/bin}

if [[ -n "${VCM_TEST_POSTGRES_URL:-}" ]]; then
  log "tests use VCM_TEST_POSTGRES_URL; no local server binaries needed"
  exit 0
fi
if [[ -x "$BIN/initdb" && -x "$BIN/postgres" ]]; then
  echo "$BIN"
  exit 0
fi
if [[ -n "${VCM_POSTGRES_BIN_DIR:-}" ]]; then
  log "VCM_POSTGRES_BIN_DIR=$BIN has no initdb and postgres"
  exit 1
fi
if [[ $(id -u) != 0 ]]; then
  log "missing the PostgreSQL 15 server binaries; install them with:"
  log "  sudo apt-get update && sudo apt-get install -y --no-install-recommends postgresql-15"
  exit 1
fi
log "installing postgresql-15"
t=$SECONDS
# NB: the package may create (and, with an init system, start) its own `15/main` cluster; the
# tests never use it.
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends postgresql-15 >&2
log "installed in $((SECONDS - t))s"
[[ -x "$BIN/initdb" && -x "$BIN/postgres" ]] || { log "$BIN still has no initdb and postgres"; exit 1; }
echo "$BIN"

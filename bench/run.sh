#!/usr/bin/env bash
# Runs a benchmark with its external load generator: installs wrk from Debian when missing,
# builds the Kubernetes binaries if needed, then `cargo bench`. `bench/run.sh` runs the
# lifecycle benchmark (benches/lifecycle.rs); `bench/run.sh gateway` the gateway against direct
# (benches/gateway.rs); `bench/run.sh webhooks` the webhook door against /healthz
# (benches/webhooks.rs); `bench/run.sh governance` requests with the Rego policy and the audit log
# against neither (benches/governance.rs); `bench/run.sh metrics` reads with metrics counted against
# metrics off (benches/metrics.rs); `bench/run.sh store` creates, GETs and lists on PostgreSQL
# with 1 and 3 replicas against SQLite (benches/store.rs). Figures and how to read them:
# docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bench=lifecycle
if [[ $# -gt 0 && $1 != -* ]]; then bench=$1; shift; fi
if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
# NB: only the benchmarks that start control planes need the Kubernetes binaries; the others
# build servers in code over the fake driver.
case $bench in
  governance|metrics|store) ;;
  *) scripts/k8s-bins.sh >/dev/null ;;
esac
exec cargo bench --bench "$bench" "$@"

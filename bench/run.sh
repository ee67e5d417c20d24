#!/usr/bin/env bash
# Runs the lifecycle benchmark (benches/lifecycle.rs) with its external load generator: installs
# wrk from Debian when missing, builds the Kubernetes binaries if needed, then `cargo bench`.
# Figures and how to read them: docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v wrk >/dev/null; then
  echo "bench: installing wrk (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
scripts/k8s-bins.sh >/dev/null
exec cargo bench --bench lifecycle "$@"

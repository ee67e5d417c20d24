#!/usr/bin/env bash
# Runs every test target (unit, integration, end-to-end; not the benchmarks, which `cargo bench`
# runs) and ends with one summary line over all test binaries.
set -euo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --lib --bins --tests "$@" 2>&1 | tee "$log" || status=$?
# The served API against its own OpenAPI document (schemathesis on a real `vcm server --dev`):
# counted as one test in the summary, and a failure fails the run.
if scripts/schemathesis.sh 2>&1 | tee -a "$log"; then
  echo "test result: ok. 1 passed; 0 failed (schemathesis)" >>"$log"
else
  status=1
  echo "test result: FAILED. 0 passed; 1 failed (schemathesis)" >>"$log"
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"

#!/usr/bin/env bash
# Runs every test target (unit, integration, end-to-end; not the benchmarks, which `cargo bench`
# runs) and ends with one summary line over all test binaries:
#
#   tests: 212 passed, 0 failed, in 14 test binaries (0 died before reporting)
#
# NB: `--no-fail-fast`: without it cargo stops at the first failing test binary, and the summary
# would count only the binaries that happened to run before it. A binary that dies before it
# prints its result (a crash, an abort) still counts: cargo reports it as a failed target.
set -euo pipefail
log=$(mktemp)
status=0
marker=$(mktemp)
trap 'rm -f "$log" "$marker"' EXIT
cargo test --no-fail-fast --lib --bins --tests "$@" 2>&1 | tee "$log" || status=$?
# The served API against its own OpenAPI document (schemathesis on a real `vcm server --dev`):
# counted as one more test binary in the summary, and a failure fails the run.
# Only for this repository (not when the script is tried on another crate), and only when the
# build produced test binaries (schemathesis needs the vcm binary).
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ "$PWD" == "$repo" ]] && grep -q '^     Running ' "$log"; then
  echo "     Running scripts/schemathesis.sh" | tee -a "$log"
  if "$repo/scripts/schemathesis.sh" 2>&1 | tee -a "$log"; then
    echo "test result: ok. 1 passed; 0 failed (schemathesis)" >>"$log"
  else
    status=1
    echo "test result: FAILED. 1 failed; 0 passed (schemathesis)" >>"$log"
    echo "error: test failed, to rerun pass scripts/schemathesis.sh" >>"$log"
  fi
fi
# After every test: no Kubernetes process a test started and no local-driver data directory a
# test made is left (scripts/leak-check.sh). Counted as one more test binary.
if [[ "$PWD" == "$repo" ]] && grep -q '^     Running ' "$log"; then
  echo "     Running scripts/leak-check.sh" | tee -a "$log"
  if "$repo/scripts/leak-check.sh" "$marker" 2>&1 | tee -a "$log"; then
    echo "test result: ok. 1 passed; 0 failed (leak check)" >>"$log"
  else
    status=1
    echo "test result: FAILED. 1 failed; 0 passed (leak check)" >>"$log"
    echo "error: test failed, to rerun pass scripts/leak-check.sh" >>"$log"
  fi
fi
awk -v status="$status" '
  /^test result:/ {
    results++
    for (i = 1; i <= NF; i++) {
      if ($i ~ /^passed;?$/) p += $(i-1)
      if ($i ~ /^failed;?$/) { f += $(i-1); if ($(i-1) > 0) failing++ }
    }
  }
  /^     Running / { binaries++ }
  /^error: test failed, to rerun pass/ { targets_failed++ }
  END {
    # A target cargo reports as failed but whose harness printed no failing result died early.
    died = targets_failed - failing
    if (died < 0) died = 0
    if (status != 0 && binaries == 0) { printf "\ntests: none ran: the build failed (see above)\n"; exit }
    printf "\ntests: %d passed, %d failed, in %d test binaries (%d died before reporting)\n", p, f + died, binaries, died
  }' "$log"
exit "$status"

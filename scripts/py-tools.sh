#!/usr/bin/env bash
# The Python tools the tests use, pinned, in .cache/venv: schemathesis (scripts/schemathesis.sh)
# and the official Kubernetes Python client (tests/gateway.rs runs it through the gateway).
# Installed from PyPI on first use and whenever a pin changes; prints the venv's path.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly SCHEMATHESIS=4.32.5
readonly KUBERNETES=37.0.2
mkdir -p .cache
# NB: the real path: a venv's scripts name their interpreter by absolute path, so a venv made
# through a symlinked .cache (a git worktree sharing it) must not record the link's path.
VENV=$(realpath .cache)/venv
readonly VENV
readonly WANT="schemathesis==$SCHEMATHESIS kubernetes==$KUBERNETES"
readonly STAMP=$VENV/.vcm-pins

if [[ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
  printf 'py-tools.sh: installing %s into %s\n' "$WANT" "$VENV" >&2
  "$VENV/bin/python" -c '' 2>/dev/null || python3 -m venv --clear "$VENV"
  # shellcheck disable=SC2086 # two requirements, split on purpose
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $WANT
  echo "$WANT" >"$STAMP"
fi
echo "$VENV"

#!/usr/bin/env bash
# What the browser test (tests/ui.rs) needs: Debian's Chromium (apt-get, when missing) and
# Playwright's library, pinned, from npm into .cache/ui-tools — playwright-core, which never
# downloads a browser; the test drives /usr/bin/chromium. Prints the node_modules path.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly PLAYWRIGHT=1.65.1
readonly CHROMIUM=${VCM_CHROMIUM:-/usr/bin/chromium}
log() { printf 'ui-tools.sh: %s\n' "$*" >&2; }

if [[ ! -x $CHROMIUM ]]; then
  if [[ $(id -u) != 0 ]]; then
    log "$CHROMIUM is missing; install Debian's Chromium with:"
    log "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium"
    exit 1
  fi
  log "installing chromium"
  t=$SECONDS
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
  log "installed in $((SECONDS - t))s"
fi
command -v npm >/dev/null || { log "npm is missing: apt-get install -y nodejs npm"; exit 1; }

mkdir -p .cache
DIR=$(realpath .cache)/ui-tools
readonly DIR
readonly STAMP=$DIR/.vcm-pins
if [[ "$(cat "$STAMP" 2>/dev/null)" != "playwright-core@$PLAYWRIGHT" ]]; then
  log "installing playwright-core@$PLAYWRIGHT into $DIR"
  t=$SECONDS
  rm -rf "$DIR" && mkdir -p "$DIR"
  # NB: playwright-core has no install script and no browser download; the variable is for
  # anyone swapping in the `playwright` package.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$DIR" --no-audit --no-fund \
    --silent "playwright-core@$PLAYWRIGHT" >&2
  echo "playwright-core@$PLAYWRIGHT" >"$STAMP"
  log "installed in $((SECONDS - t))s"
fi
echo "$DIR/node_modules"

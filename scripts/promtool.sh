#!/usr/bin/env bash
# Builds Prometheus's promtool from Go modules into a versioned cache directory, and reuses it
# when it is already there. tests/monitoring.rs runs it against deploy/prometheus/ and the
# Grafana dashboard's queries (docs/MONITORING.md).
#
#   scripts/promtool.sh            build it if missing, print the directory
#   scripts/promtool.sh --print    print the directory only (no build)
#
# Output: $VCM_PROMTOOL_DIR (default: <repo>/.cache/promtool/<version>/) holding promtool.
# Nothing but the machine's Go and the Go module proxy is used.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# NB: the Go module of Prometheus v3.X.Y is tagged v0.3XX.Y (v0.316.0 is Prometheus 3.16.0).
# The directory is keyed on it, so a changed pin never reuses an old binary.
PROMETHEUS_MODULE_VERSION=v0.316.0
PROMETHEUS_VERSION=3.16.0
OUT=${VCM_PROMTOOL_DIR:-$REPO/.cache/promtool/$PROMETHEUS_MODULE_VERSION}

if [[ "${1:-}" == "--print" ]]; then echo "$OUT"; exit 0; fi

# Ignore any enclosing go.work or vendoring, and never switch toolchains behind our back.
export GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
log() { echo "promtool: $*" >&2; }

if [[ -x "$OUT/promtool" ]]; then echo "$OUT"; exit 0; fi
command -v go >/dev/null || { log "'go' not found; install Go >= 1.26 first"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vcm-promtool.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
t=$SECONDS

# `go install …/cmd/promtool@version` is refused (the prometheus module has replace directives),
# so a wrapper module requires it. The build tag remove_all_sd drops every service-discovery
# plugin (plugins/ honours it): promtool's rule checks and rule unit tests need none of them, and
# the cloud SDKs they pull in are most of the build.
cd "$WORK"
go mod init vcm.local/promtoolbuild >/dev/null 2>&1
go get "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" 2>&1 |
  grep -v '^go: downloading' >&2 || true
v=github.com/prometheus/common/version
go build -trimpath -tags remove_all_sd \
  -ldflags "-s -w -X $v.Version=$PROMETHEUS_VERSION -X $v.Branch=HEAD -X $v.Revision=$PROMETHEUS_MODULE_VERSION" \
  -o "$WORK/promtool" github.com/prometheus/prometheus/cmd/promtool
mkdir -p "$OUT"
mv "$WORK/promtool" "$OUT/promtool"
log "built promtool $PROMETHEUS_VERSION in $((SECONDS - t))s: $OUT"
echo "$OUT"

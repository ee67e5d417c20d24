#!/usr/bin/env bash
# Builds the Kubernetes binaries vcm's local driver and tests run, from Go modules, into a
# versioned cache directory, and reuses whatever is already there for the same versions.
#
#   scripts/k8s-bins.sh            build what is missing, print the directory
#   scripts/k8s-bins.sh --print    print the directory only (no build)
#
# Output: $VCM_K8S_BIN_DIR (default: <repo>/.cache/k8s/<versions>/) holding kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd, kwok, helm, vclusterctl, kwok-stages/*.yaml and
# vcluster-chart/ (the chart of the same vcluster release, for --local-chart-dir).
# Nothing but the machine's Go and the Go module proxy is used. See docs/KUBERNETES-BINARIES.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# NB: one pinned release per component, in k8s-versions.env (vcm reads the same file). Changing
# any of them changes the cache key below, so an old cache is never mistaken for a new one.
# shellcheck source=k8s-versions.env
source "$REPO/scripts/k8s-versions.env"
EXTRA_KEY=$(for v in $K8S_EXTRA_VERSIONS; do printf '+%s' "$v"; done)
KEY="k8s-${K8S_VERSION}${EXTRA_KEY}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_vcluster-${VCLUSTER_VERSION}_kine-${KINE_VERSION}_coredns-${COREDNS_VERSION}"
OUT=${VCM_K8S_BIN_DIR:-$REPO/.cache/k8s/$KEY}

if [[ "${1:-}" == "--print" ]]; then echo "$OUT"; exit 0; fi

# Ignore any enclosing go.work or vendoring, and never switch toolchains behind our back.
export GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
command -v go >/dev/null || { echo "k8s-bins: 'go' not found; install Go >= 1.26 first" >&2; exit 1; }

mkdir -p "$OUT/kwok-stages"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vcm-k8s-bins.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log() { echo "k8s-bins: $*" >&2; }
START_ALL=$SECONDS

have() { for b in "$@"; do [[ -x "$OUT/$b" ]] || return 1; done; }

# --- kube-apiserver, kube-controller-manager, kube-scheduler -----------------------------------
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging, so
# `go install` refuses it. A wrapper module replaces each staging module with its published
# v0.MINOR.PATCH release instead, and builds all three binaries in one `go build` (they share
# most packages).
# $1: the release; $2: where the binaries go; the rest: the commands (default: the three
# control-plane binaries).
build_kube() {
  local K8S_VERSION=$1 dest=$2
  shift 2
  local cmds=("$@")
  [[ $# -gt 0 ]] || cmds=(kube-apiserver kube-controller-manager kube-scheduler)
  local t=$SECONDS minor staging w gomod ld c pkgs=() gets=()
  for c in "${cmds[@]}"; do
    pkgs+=("k8s.io/kubernetes/cmd/$c"); gets+=("k8s.io/kubernetes/cmd/$c@v$K8S_VERSION")
  done
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  staging="v0.${K8S_VERSION#1.}"
  w="$WORK/kube-$K8S_VERSION-${cmds[0]}"; mkdir -p "$w"; cd "$w"
  go mod init vcm.local/k8sbuild >/dev/null 2>&1
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  [[ -f "$gomod" ]] || { log "cannot download k8s.io/kubernetes@v$K8S_VERSION"; exit 1; }
  for m in $(sed -n 's|^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/src/.*|\1|p' "$gomod"); do
    go mod edit "-replace=$m=$m@$staging"
  done
  go get "${gets[@]}" 2>&1 | grep -v '^go: downloading' >&2 || true
  # Without these ldflags /version reports v0.0.0-master, which breaks helm kubeVersion checks.
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld="$ld -X $p.gitTreeState=clean -X $p.gitCommit=0000000000000000000000000000000000000000"
    ld="$ld -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$w/bin"
  go build -trimpath -ldflags "$ld" -o "$w/bin/" "${pkgs[@]}"
  mkdir -p "$dest"
  mv "$w/bin/"* "$dest/"
  log "built ${cmds[*]} v$K8S_VERSION in $((SECONDS - t))s"
}

# --- etcd ----------------------------------------------------------------------------------------
# etcd's server module has replace directives too; a wrapper that requires it builds it from the
# published module versions it already names.
build_etcd() {
  local t=$SECONDS w="$WORK/etcd"
  mkdir -p "$w"; cd "$w"
  go mod init vcm.local/etcdbuild >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" 2>&1 | grep -v '^go: downloading' >&2 || true
  go build -trimpath -ldflags "-s -w" -o "$w/etcd" go.etcd.io/etcd/server/v3
  mv "$w/etcd" "$OUT/etcd"
  log "built etcd v$ETCD_VERSION in $((SECONDS - t))s"
}

# --- kwok and its stage files ----------------------------------------------------------------------
build_kwok() {
  local t=$SECONDS
  GOBIN="$WORK/gobin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  mv "$WORK/gobin/kwok" "$OUT/kwok"
  log "built kwok v$KWOK_VERSION in $((SECONDS - t))s"
}
copy_kwok_stages() {
  local src
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@v$KWOK_VERSION/kustomize/stage"
  [[ -d "$src" ]] || (cd "$WORK" && go mod download "sigs.k8s.io/kwok@v$KWOK_VERSION")
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    install -m 0644 "$src/$f" "$OUT/kwok-stages/$(basename "$f")"
  done
}

# --- helm ----------------------------------------------------------------------------------------
build_helm() {
  local t=$SECONDS
  GOBIN="$WORK/gobin" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  mv "$WORK/gobin/helm" "$OUT/helm"
  log "built helm v$HELM_VERSION in $((SECONDS - t))s"
}

# --- the vcluster CLI and its chart ------------------------------------------------------------------
# `go install …@version` is refused here (the proxy will not list the module's versions), so a
# wrapper module requires the exact version. NB: loft-sh's pre-release API modules are not in
# the public checksum database; GONOSUMDB exempts only github.com/loft-sh from that lookup (the
# go.sum of the wrapper still pins what was downloaded).
build_vcluster() {
  local t=$SECONDS w="$WORK/vcluster"
  mkdir -p "$w/bin"; cd "$w"
  go mod init vcm.local/vclusterbuild >/dev/null 2>&1
  go mod edit "-require=github.com/loft-sh/vcluster@v$VCLUSTER_VERSION"
  # One build for the CLI and the control plane the chart runs (`vcluster start`, the syncer,
  # for the test bed's locally built image): they share most packages. NB: the syncer's
  # telemetry.SyncerVersion stays "dev", which turns its telemetry off.
  GONOSUMDB=github.com/loft-sh go build -trimpath \
    -ldflags "-s -w -X main.version=$VCLUSTER_VERSION" -o "$w/bin/" \
    github.com/loft-sh/vcluster/cmd/vclusterctl github.com/loft-sh/vcluster/cmd/vcluster
  mv "$w/bin/vclusterctl" "$w/bin/vcluster" "$OUT/"
  log "built vclusterctl and vcluster v$VCLUSTER_VERSION in $((SECONDS - t))s"
}

# --- CoreDNS with the plugins the vCluster chart's Corefile uses ------------------------------------
# scripts/coredns/main.go picks the plugins (the full CoreDNS pulls every cloud provider's SDK:
# a cold build of tens of minutes on 2 cores instead of one or two).
build_coredns() {
  local t=$SECONDS w="$WORK/coredns"
  mkdir -p "$w"; cd "$w"
  go mod init vcm.local/coredns >/dev/null 2>&1
  cp "$REPO/scripts/coredns/main.go" .
  go mod edit "-require=github.com/coredns/coredns@v$COREDNS_VERSION"
  go mod tidy 2>&1 | grep -v '^go: downloading' >&2 || true
  go build -trimpath -ldflags "-s -w" -o "$w/coredns-bin" .
  mv "$w/coredns-bin" "$OUT/coredns"
  log "built coredns v$COREDNS_VERSION in $((SECONDS - t))s"
}

# --- kine: the etcd API over SQLite, which the vCluster k8s distro runs as its store ------------
# CGO-free: kine then uses modernc.org/sqlite instead of mattn/go-sqlite3.
build_kine() {
  local t=$SECONDS w="$WORK/kine"
  mkdir -p "$w"; cd "$w"
  go mod init vcm.local/kinebuild >/dev/null 2>&1
  go get "github.com/k3s-io/kine@v$KINE_VERSION" 2>&1 | grep -v '^go: downloading' >&2 || true
  go build -trimpath -ldflags "-s -w" -o "$w/kine" github.com/k3s-io/kine
  mv "$w/kine" "$OUT/kine"
  log "built kine v$KINE_VERSION in $((SECONDS - t))s"
}
copy_vcluster_chart() {
  local src
  src="$(go env GOMODCACHE)/github.com/loft-sh/vcluster@v$VCLUSTER_VERSION/chart"
  [[ -d "$src" ]] || (cd "$WORK" && GONOSUMDB=github.com/loft-sh go mod download "github.com/loft-sh/vcluster@v$VCLUSTER_VERSION")
  rm -rf "$OUT/vcluster-chart.tmp"
  cp -r "$src" "$OUT/vcluster-chart.tmp"
  chmod -R u+w "$OUT/vcluster-chart.tmp"
  mv "$OUT/vcluster-chart.tmp" "$OUT/vcluster-chart"
}

have etcd || build_etcd
# NB: the default release's kubelet and kube-proxy (test bed tier C's node) in the same `go build`
# as its control plane: they share most packages.
have kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy ||
  build_kube "$K8S_VERSION" "$OUT" kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
for v in $K8S_EXTRA_VERSIONS; do
  have "k8s-$v/kube-apiserver" "k8s-$v/kube-controller-manager" "k8s-$v/kube-scheduler" ||
    build_kube "$v" "$OUT/k8s-$v"
done
have kwok || build_kwok
[[ -f "$OUT/kwok-stages/pod-ready.yaml" ]] || copy_kwok_stages
have helm || build_helm
have vclusterctl vcluster || build_vcluster
# Test bed tier C (a real node): kine and CoreDNS for the locally built images
# (scripts/node-images.sh).
have kine || build_kine
have coredns || build_coredns
[[ -f "$OUT/vcluster-chart/Chart.yaml" ]] || copy_vcluster_chart

cat >"$OUT/VERSIONS" <<V
K8S_VERSION=$K8S_VERSION
K8S_EXTRA_VERSIONS="$K8S_EXTRA_VERSIONS"
ETCD_VERSION=$ETCD_VERSION
KWOK_VERSION=$KWOK_VERSION
HELM_VERSION=$HELM_VERSION
VCLUSTER_VERSION=$VCLUSTER_VERSION
KINE_VERSION=$KINE_VERSION
COREDNS_VERSION=$COREDNS_VERSION
V
log "ready in $((SECONDS - START_ALL))s: $OUT"
echo "$OUT"

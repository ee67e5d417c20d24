#!/usr/bin/env bash
# Test bed tier C (a real node): installs what the node runs from Debian (containerd, runc, the
# CNI plugins, iptables, busybox-static, gcc for the pause binary) if it is missing, and builds
# the container images the node uses as OCI image tarballs, without a Docker daemon or a
# registry, from binaries `scripts/k8s-bins.sh` built:
#
#   vcm.local/pause:3.10              the pod sandbox (pause.c from the pinned Kubernetes module)
#   vcm.local/vcluster-k8s:v<k8s>     the vCluster k8s distro: /kubernetes/{kube-apiserver,
#                                     kube-controller-manager, kube-scheduler, kine, helm} + cp
#   vcm.local/vcluster:<vcluster>     the vCluster control plane: /vcluster, Entrypoint `vcluster start`
#   vcm.local/coredns:<coredns>       the cluster DNS the chart deploys in each virtual cluster
#   vcm.local/workload:2              a test workload: prints a line, serves /www on port 8080
#                                     (has tar, for kubectl cp)
#
#   scripts/node-images.sh            install/build what is missing, print the images directory
#
# Output: <binaries dir>/images/<name>.tar (`ctr images import` loads them). Cached: an image
# is rebuilt only when its tarball is missing (the binaries directory is keyed by every pinned
# version, so new versions mean a new directory).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=k8s-versions.env
source "$REPO/scripts/k8s-versions.env"
BINS=$("$REPO/scripts/k8s-bins.sh" --print)
OUT="$BINS/images"
log() { echo "node-images: $*" >&2; }
START_ALL=$SECONDS

# --- Debian packages -----------------------------------------------------------------------------
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null || missing+=(iptables)
[[ -x /bin/busybox ]] || missing+=(busybox-static)
command -v gcc >/dev/null || missing+=(gcc)
[[ -f /usr/include/stdio.h ]] || missing+=(libc6-dev)
command -v nsenter >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    log "missing Debian packages: ${missing[*]}; install them with:"
    log "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]}"
  t=$SECONDS
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  log "installed in $((SECONDS - t))s"
fi
if ! { ldd /bin/busybox 2>&1 || true; } | grep -q 'not a dynamic executable'; then
  log "/bin/busybox is not statically linked; install busybox-static"
  exit 1
fi

for b in kube-apiserver kube-controller-manager kube-scheduler kine helm vcluster coredns; do
  [[ -x "$BINS/$b" ]] || { log "$BINS/$b is missing; run scripts/k8s-bins.sh first"; exit 1; }
done

mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vcm-node-images.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# shellcheck source=oci-image.sh
source "$REPO/scripts/oci-image.sh"

# oci_image <ref> <rootfs dir> <config JSON fragment>: write $OUT/<name>_<tag>.tar (see oci_write).
oci_image() {
  local ref=$1 rootfs=$2 cfg=$3 file size
  file="$(echo "${ref#vcm.local/}" | tr ':/' '__').tar"
  size=$(oci_write "$ref" "$rootfs" "$cfg" "$OUT/$file")
  log "built $ref ($((size / 1024 / 1024)) MiB) -> $OUT/$file"
}

# base_rootfs <dir>: busybox (static) with the applets the images use, /tmp, and a passwd file.
base_rootfs() {
  local r=$1 a
  mkdir -p "$r/bin" "$r/tmp" "$r/etc" "$r/proc" "$r/sys" "$r/dev"
  chmod 1777 "$r/tmp"
  install -m 0755 /bin/busybox "$r/bin/busybox"
  for a in sh cp cat ls echo mkdir sleep httpd hostname env; do ln -s busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$r/etc/group"
}

have() { [[ -f "$OUT/$1" ]]; }

# --- pause -----------------------------------------------------------------------------------------
if ! have pause_3.10.tar; then
  src="$(go env GOMODCACHE)/k8s.io/kubernetes@v$K8S_VERSION/build/pause/linux/pause.c"
  if [[ ! -f "$src" ]]; then
    (cd "$WORK" && go mod init vcm.local/pause >/dev/null 2>&1 &&
      GOFLAGS=-mod=mod go mod download "k8s.io/kubernetes@v$K8S_VERSION")
  fi
  r="$WORK/pause"; mkdir -p "$r"
  gcc -Os -static -o "$r/pause" "$src"
  strip "$r/pause"
  oci_image vcm.local/pause:3.10 "$r" '{"Entrypoint":["/pause"],"User":"65535:65535"}'
fi

# --- the vCluster k8s distro -------------------------------------------------------------------------
# The chart's init container runs `cp -r /kubernetes/. /binaries/`; the syncer then execs these.
if ! have "vcluster-k8s_v$K8S_VERSION.tar"; then
  r="$WORK/distro"; base_rootfs "$r"; mkdir -p "$r/kubernetes"
  for b in kube-apiserver kube-controller-manager kube-scheduler kine helm; do
    install -m 0755 "$BINS/$b" "$r/kubernetes/$b"
  done
  oci_image "vcm.local/vcluster-k8s:v$K8S_VERSION" "$r" \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}'
fi

# --- the vCluster control plane (syncer) ---------------------------------------------------------------
if ! have "vcluster_$VCLUSTER_VERSION.tar"; then
  r="$WORK/vcluster"; base_rootfs "$r"
  install -m 0755 "$BINS/vcluster" "$r/vcluster"
  oci_image "vcm.local/vcluster:$VCLUSTER_VERSION" "$r" \
    '{"Entrypoint":["/vcluster","start"],"WorkingDir":"/","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}'
fi

# --- CoreDNS, which the chart deploys in every virtual cluster (and the syncer waits for) --------------
if ! have "coredns_$COREDNS_VERSION.tar"; then
  r="$WORK/coredns"; mkdir -p "$r/tmp" "$r/etc"; chmod 1777 "$r/tmp"
  install -m 0755 "$BINS/coredns" "$r/coredns"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$r/etc/passwd"
  oci_image "vcm.local/coredns:$COREDNS_VERSION" "$r" '{"Entrypoint":["/coredns"],"User":"65532:65532"}'
fi

# --- the test workload ----------------------------------------------------------------------------------
if ! have workload_2.tar; then
  r="$WORK/workload"; base_rootfs "$r"; mkdir -p "$r/www"
  ln -s busybox "$r/bin/tar"
  echo "hello from vcm's test workload" >"$r/www/index.html"
  oci_image vcm.local/workload:2 "$r" \
    '{"Entrypoint":["/bin/sh","-c","echo \"workload serving /www on :8080 as $(hostname)\"; exec httpd -f -p 8080 -h /www"],"Env":["PATH=/bin"]}'
fi

log "ready in $((SECONDS - START_ALL))s: $OUT"
echo "$OUT"

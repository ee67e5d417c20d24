#!/usr/bin/env bash
# vcm's container image without a Docker daemon: the same layout as the repository's Dockerfile
# (distroless cc-debian12:nonroot), from a vcm binary built here and the pinned helm, vclusterctl
# and vcluster chart `scripts/k8s-bins.sh` built, as an OCI image tarball that
# `ctr images import` loads (tests/chart_node.rs installs the chart with it on a real node).
#
#   scripts/vcm-image.sh <vcm binary> <out.tar> [<tag>]     the image vcm.local/vcm:<tag> (dev)
#
# What the distroless base gives, taken from this machine: the binary's shared libraries and
# the dynamic loader (from ldd), the CA certificates, /etc/passwd and /etc/group with nonroot
# (65532), /etc/nsswitch.conf, /tmp and /home/nonroot. No shell, as in distroless.
# NB: keep it in step with the Dockerfile (paths, user, workdir, entrypoint, command, env);
# tests/chart_node.rs compares the two.
set -euo pipefail

vcm=${1:?usage: scripts/vcm-image.sh <vcm binary> <out.tar> [<tag>]}
out=${2:?usage: scripts/vcm-image.sh <vcm binary> <out.tar> [<tag>]}
tag=${3:-dev}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BINS=$("$REPO/scripts/k8s-bins.sh" --print)
log() { echo "vcm-image: $*" >&2; }
start=$SECONDS

[[ -x "$vcm" ]] || { log "$vcm is not an executable"; exit 1; }
for b in helm vclusterctl vcluster-chart/Chart.yaml; do
  [[ -e "$BINS/$b" ]] || { log "$BINS/$b is missing; run scripts/k8s-bins.sh first"; exit 1; }
done
certs=/etc/ssl/certs/ca-certificates.crt
[[ -f $certs ]] || { log "$certs is missing: apt-get install ca-certificates"; exit 1; }

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.vcm-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
r=$work/rootfs

# --- the base: what distroless cc-debian12:nonroot holds and vcm uses ----------------------------
mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/home/nonroot" "$r/var/lib/vcm"
chmod 1777 "$r/tmp"
# Every library the binary links (with the loader, at the path the binary names).
while read -r lib; do
  mkdir -p "$r$(dirname "$lib")"
  cp -L "$lib" "$r$lib"
done < <(ldd "$vcm" | grep -o '/[^ ]*' | sort -u)
install -m 0644 "$certs" "$r/etc/ssl/certs/ca-certificates.crt"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$r/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$r/etc/group"
echo 'hosts: files dns' >"$r/etc/nsswitch.conf"

# --- what the Dockerfile copies ----------------------------------------------------------------------
install -D -m 0755 "$vcm" "$r/usr/local/bin/vcm"
install -D -m 0755 "$BINS/helm" "$r/opt/vcm/bin/helm"
install -D -m 0755 "$BINS/vclusterctl" "$r/opt/vcm/bin/vclusterctl"
cp -r "$BINS/vcluster-chart" "$r/opt/vcm/vcluster-chart"
chmod -R a+rX,u+w "$r/opt/vcm/vcluster-chart"

# shellcheck source=oci-image.sh
source "$REPO/scripts/oci-image.sh"
ref="vcm.local/vcm:$tag"
size=$(oci_write "$ref" "$r" '{"User":"65532:65532","WorkingDir":"/var/lib/vcm","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt","HOME=/tmp"],"ExposedPorts":{"8080/tcp":{},"9464/tcp":{}},"Entrypoint":["/usr/local/bin/vcm"],"Cmd":["server","--config","/etc/vcm/vcm.toml"]}' \
  "$out" 65532:65532 var/lib/vcm 65532:65532 home/nonroot)
log "built $ref ($((size / 1024 / 1024)) MiB) in $((SECONDS - start))s -> $out"

# shellcheck shell=bash
# Sourced by scripts/node-images.sh and scripts/vcm-image.sh: writes an OCI image layout tarball
# from a root filesystem directory with tar and sha256sum alone (no Docker daemon, no registry).
# `ctr images import` loads the result.

# oci_write <ref> <rootfs dir> <config JSON fragment> <out.tar> [<uid:gid> <path>]...
#
# One uncompressed layer (containerd imports uncompressed layers; skipping gzip saves seconds
# per hundred MB), every file owned by 0:0 except each <path> (relative to the rootfs, with what
# is under it) owned by its <uid:gid>, as a Dockerfile's `COPY --chown` makes it. The index
# entry is annotated with the image name, which is what `ctr images import` names the image
# after. Prints the layer's size in bytes.
oci_write() {
  local ref=$1 rootfs=$2 cfg=$3 out=$4
  shift 4
  local d
  d=$(mktemp -d "$(dirname "$out")/.oci-layout.XXXXXX")
  mkdir -p "$d/blobs/sha256"
  local tar_common=(--sort=name --numeric-owner --mtime=@0 -C "$rootfs")
  local excludes=() owned=("$@")
  while (($#)); do
    excludes+=(--exclude="./$2")
    shift 2
  done
  tar "${tar_common[@]}" --owner=0 --group=0 --anchored "${excludes[@]}" -cf "$d/layer.tar" .
  set -- "${owned[@]}"
  while (($#)); do
    tar "${tar_common[@]}" --owner="${1%:*}" --group="${1#*:}" -rf "$d/layer.tar" "./$2"
    shift 2
  done
  local layer layer_size config config_size manifest manifest_size
  layer=$(_oci_sha "$d/layer.tar"); layer_size=$(stat -c %s "$d/layer.tar")
  mv "$d/layer.tar" "$d/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$cfg" "$layer" >"$d/config.json"
  config=$(_oci_sha "$d/config.json"); config_size=$(stat -c %s "$d/config.json")
  mv "$d/config.json" "$d/blobs/sha256/$config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" >"$d/manifest.json"
  manifest=$(_oci_sha "$d/manifest.json"); manifest_size=$(stat -c %s "$d/manifest.json")
  mv "$d/manifest.json" "$d/blobs/sha256/$manifest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$manifest_size" "$ref" "${ref##*:}" >"$d/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
  tar -C "$d" -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
  rm -rf "$d"
  echo "$layer_size"
}

_oci_sha() { sha256sum "$1" | cut -d' ' -f1; }

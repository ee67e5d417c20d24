#!/usr/bin/env bash
# After a test run: fails (exit 1, naming each leak) if a Kubernetes process a test started is
# still running (one of the cache's binaries with a temp directory on its command line) or a
# local-driver data directory (`*/local/clusters`) newer than the file $1 is left in the temp
# directory, or anything of a tier-C bed (containerd, shims, cgroups, veths, mounts), or a
# PostgreSQL server of the store's tests (a process working in, or a directory, `vcm-pg-*`).
# A `make run` server of the developer's own (data under ./.vcm) is not a test's.
#
#   scripts/leak-check.sh <marker file made when the run started>
set -euo pipefail
marker=${1:?usage: scripts/leak-check.sh <marker file>}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bins=$("$repo/scripts/k8s-bins.sh" --print)
tmp=${TMPDIR:-/tmp}

processes() {
  local exe pid target cmd
  for exe in /proc/[0-9]*/exe; do
    pid=${exe#/proc/}; pid=${pid%/exe}
    target=$(readlink "$exe" 2>/dev/null) || continue
    [[ "$target" == "$bins"/* ]] || continue
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
    [[ "$cmd" == *"$tmp/"* ]] && echo "process $pid: $cmd"
  done
  # A test PostgreSQL server (src/testing/postgres/): each of its processes works in its
  # data directory, and its backends rename their command lines.
  for exe in /proc/[0-9]*/cwd; do
    pid=${exe#/proc/}; pid=${pid%/cwd}
    target=$(readlink "$exe" 2>/dev/null) || continue
    [[ "$target" == "$tmp"/vcm-pg-* ]] || continue
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
    echo "process $pid: $cmd"
  done
  return 0
}

# NB: a test's last processes may still be exiting after their SIGKILL (a slow machine takes
# longer): only what is still there after 10 s is a leak.
leaked=$(processes)
for _ in $(seq 20); do
  [[ -z "$leaked" ]] && break
  sleep 0.5
  leaked=$(processes)
done
dirs=$(
  find "$tmp" -maxdepth 4 -type d -path '*/local/clusters' -newer "$marker" 2>/dev/null
  find "$tmp" -maxdepth 1 -type d -name 'vcm-pg-*' -newer "$marker" 2>/dev/null
)
dirs=$(printf '%s\n' "$dirs" | sed '/^$/d; s/^/directory /')
# Test bed tier C (a real node): no containerd or shim of a bed, no bed cgroup, veth or mount.
node=$(
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    [[ "$cmd" == *containerd*"$tmp/vcm-testbed-"* ]] && echo "process ${p#/proc/}: $cmd"
  done
  ls -d /sys/fs/cgroup/*/vcm-bed-* 2>/dev/null | sed 's/^/cgroup /'
  ls /sys/class/net 2>/dev/null | grep '^vcmb' | sed 's/^/veth /'
  grep -o "$tmp/vcm-testbed-[^ ]*" /proc/self/mountinfo | sed 's/^/mount /'
  true
)
all=$(printf '%s\n%s\n%s\n' "$leaked" "$dirs" "$node" | sed '/^$/d')
if [[ -n "$all" ]]; then
  echo "leaked:" >&2
  echo "$all" >&2
  exit 1
fi
echo "leak check: no process or directory of a test cluster or test database server is left"

#!/usr/bin/env bash
# vcm's local driver against kwokctl (issue 9): the same cluster, made by each tool, on the same
# Kubernetes binaries, in alternating rounds.
#
# What it does
#   1. Builds `kwokctl` at the pinned kwok version (KWOK_VERSION, scripts/k8s-versions.env) from
#      Go modules into .cache/bench/kwokctl-<version>/ (reused when present), the release `vcm`
#      (`cargo build --release`), and the project's Kubernetes binaries (scripts/k8s-bins.sh).
#   2. Starts one `vcm server --dev` on a loopback port in a temp dir, and one untimed warm-up
#      cluster with each tool (the warm-up starts vcm's shared etcd and warms the page cache for
#      both; its figures are printed apart and not counted).
#   3. ROUNDS times (default 5), alternating which tool goes first:
#        kwokctl: `kwokctl create cluster --runtime binary` with every component binary given
#                 (nothing is downloaded; state under a temp KWOK_WORKDIR; every listener on
#                 127.0.0.1), `kwokctl scale node --replicas 1`, node Ready, a 2-replica
#                 Deployment rolled out, RSS, `kwokctl delete cluster`.
#        vcm:     `vcm cluster create --wait` (Ready = its kwok node is Ready), `vcm cluster
#                 kubeconfig`, node Ready, the same Deployment, RSS, `vcm cluster delete --wait`.
#   4. Prints the table below and removes every process, port and temp dir on exit (trap).
#
# How to read it
#   create    = the create command returned. NOT the same event: kwokctl starts all five
#               programs at once and returns when its kube-apiserver serves /version (no node
#               yet, controllers still starting); `vcm cluster create --wait` returns at Ready
#               (kube-apiserver /readyz, then controllers, scheduler, a Ready node and the
#               `default` ServiceAccount), seen by a poll every second.
#   node      = from the create command to `kubectl wait --for=condition=Ready node --all` done
#               (kwokctl: + `kwokctl scale node`; vcm: + `vcm cluster kubeconfig`). The like-for-
#               like start-up figure: goal vcm/kwokctl <= 0.8.
#   rollout   = from the create command to `kubectl rollout status` of a 2-replica Deployment.
#   rss       = sum of VmRSS of the cluster's processes once the Deployment is rolled out.
#               kwokctl: etcd, kube-apiserver, controller-manager, scheduler, kwok-controller.
#               vcm: kube-apiserver, controller-manager, scheduler, kwok (found by the cluster id
#               in /proc/*/cmdline); vcm's one etcd is shared by all clusters and shown apart.
#               Goal vcm/kwokctl <= 0.8.
#   Below the table: how much of vcm's create is its kube-apiserver (from the server log), and
#   each program's RSS in the last round.
#   Each cell: median (min..max) over ROUNDS. Then "how many clusters fit": (MemTotal - 2 GiB)
#   / vcm's median RSS, next to the capacity vcm derives itself (GET /v1/hosts, `max_clusters`).
#   The load average before and after is printed: other work on the machine skews both tools.
#
# Usage: ROUNDS=5 bench/vs-kwokctl.sh            (needs go, cargo, kubectl, curl, jq, python3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
rounds=${ROUNDS:-5}
# shellcheck source=scripts/k8s-versions.env
source scripts/k8s-versions.env

log() { echo "vs-kwokctl: $*" >&2; }
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# --- temp dir and cleanup --------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/vcm-vs-kwokctl.XXXXXX")
server_pid="" vcm=""
kwokctl_dir="$repo/.cache/bench/kwokctl-$KWOK_VERSION"
kwokctl="$kwokctl_dir/kwokctl"

# Processes whose command line names our temp dir: only ones this script started.
our_pids() {
  local d cmd
  for d in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    [[ "$cmd" == *"$work/"* ]] && echo "${d#/proc/}"
  done
  return 0
}

cleanup() {
  local status=$? pid left
  trap - EXIT INT TERM
  set +e
  log "cleaning up"
  for c in "$work"/kwok/clusters/*/; do
    [[ -d "$c" && -x "$kwokctl" ]] && KWOK_WORKDIR="$work/kwok" "$kwokctl" delete cluster --name "$(basename "$c")" >/dev/null 2>&1
  done
  if [[ -n "$server_pid" && -n "$vcm" ]] && kill -0 "$server_pid" 2>/dev/null; then
    for id in $("$vcm" cluster list -o json 2>/dev/null | jq -r '.items[] | select(.phase != "Deleted") | .id'); do
      timeout 60 "$vcm" cluster delete "$id" --wait >/dev/null 2>&1
    done
    kill -TERM "$server_pid"
    for _ in $(seq 1 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  left=$(our_pids)
  if [[ -n "$left" ]]; then
    log "still running after a graceful stop, killing: ${left//$'\n'/ }"
    for pid in $left; do kill -KILL "$pid" 2>/dev/null; done
    sleep 0.5
  fi
  left=$(our_pids)
  [[ -z "$left" ]] || { log "processes left: ${left//$'\n'/ }"; status=1; }
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- binaries --------------------------------------------------------------------------------------
bins=$(scripts/k8s-bins.sh --print)
scripts/k8s-bins.sh >/dev/null
if [[ ! -x "$kwokctl" ]]; then
  log "building kwokctl v$KWOK_VERSION from Go modules"
  mkdir -p "$kwokctl_dir" "$work/gobuild"
  (cd "$work/gobuild" && GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 \
    GOBIN="$work/gobuild/bin" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwokctl@v$KWOK_VERSION")
  mv "$work/gobuild/bin/kwokctl" "$kwokctl"
fi
log "building the release vcm"
cargo build --release --quiet >&2
vcm="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/vcm"
export VCM_K8S_BIN_DIR="$bins"

# --- kwokctl ---------------------------------------------------------------------------------------
export KWOK_WORKDIR="$work/kwok"
mkdir -p "$KWOK_WORKDIR"
# Every listener on loopback (kwokctl binds 0.0.0.0 by default).
cat >"$work/kwokctl.yaml" <<'EOF'
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  bindAddress: 127.0.0.1
EOF

# The summed VmRSS (KiB) and count of the processes whose command line contains $1.
rss_of() {
  local needle=$1 d cmd kib total=0 n=0
  for d in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    [[ "$cmd" == *"$needle"* ]] || continue
    kib=$(awk '/^VmRSS:/ { print $2 }' "$d/status" 2>/dev/null) || kib=0
    total=$((total + ${kib:-0})) n=$((n + 1))
  done
  echo "$total $n"
}

# RSS (MiB) of each process whose command line contains $1, by program: "etcd=43 kube-apiserver=270 …".
rss_by_program() {
  local needle=$1 d cmd kib prog
  for d in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    [[ "$cmd" == *"$needle"* ]] || continue
    kib=$(awk '/^VmRSS:/ { print $2 }' "$d/status" 2>/dev/null) || kib=0
    prog=${cmd%% *}
    echo "${prog##*/}=$((${kib:-0} / 1024))"
  done | sort | tr '\n' ' '
}

# `kubectl wait` for every node Ready, retried while no node exists yet.
wait_nodes() {
  local kc=$1 deadline=$((SECONDS + 120))
  until kubectl --kubeconfig "$kc" wait --for=condition=Ready node --all --timeout=120s >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { log "no Ready node after 120s"; return 1; }
    sleep 0.1
  done
}

rollout() {
  local kc=$1
  kubectl --kubeconfig "$kc" create deployment web --image=nginx --replicas=2 >/dev/null
  kubectl --kubeconfig "$kc" rollout status deploy/web --timeout=120s >/dev/null
}

# One kwokctl cluster; appends "create node rollout rss_kib processes" to $2.
run_kwokctl() {
  local name=$1 out=$2 kc="$work/$1.kubeconfig" t0 t1 t2 t3 rss
  t0=$(now)
  "$kwokctl" --config "$work/kwokctl.yaml" create cluster --name "$name" --runtime binary \
    --kube-apiserver-binary "$bins/kube-apiserver" \
    --kube-controller-manager-binary "$bins/kube-controller-manager" \
    --kube-scheduler-binary "$bins/kube-scheduler" \
    --etcd-binary "$bins/etcd" --kwok-controller-binary "$bins/kwok" \
    --kubeconfig "$kc" --quiet-pull >"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; return 1; }
  t1=$(now)
  "$kwokctl" scale node --name "$name" --replicas 1 >>"$work/$name.log" 2>&1
  wait_nodes "$kc"
  t2=$(now)
  rollout "$kc"
  t3=$(now)
  rss=$(rss_of "$KWOK_WORKDIR/clusters/$name/")
  rss_by_program "$KWOK_WORKDIR/clusters/$name/" >"$work/programs-kwokctl"
  "$kwokctl" delete cluster --name "$name" >>"$work/$name.log" 2>&1
  echo "$(secs "$t0" "$t1") $(secs "$t0" "$t2") $(secs "$t0" "$t3") $rss" >>"$out"
}

# --- vcm -------------------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export VCM_ADDR="http://127.0.0.1:$port" VCM_TOKEN_FILE="$work/vcm/dev-token"
unset VCM_TOKEN
mkdir -p "$work/vcm"
"$vcm" server --dev --data-dir "$work/vcm" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$VCM_ADDR/readyz" >/dev/null 2>&1 && [[ -s "$VCM_TOKEN_FILE" ]] && break
  sleep 0.1
done
curl -fsS "$VCM_ADDR/readyz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }
# The token goes to curl in a file (-H @file), never on a command line.
printf 'Authorization: Bearer %s\n' "$(cat "$VCM_TOKEN_FILE")" >"$work/auth-header"
chmod 600 "$work/auth-header"

etcd_rss_samples="$work/etcd-rss"
# One vcm cluster; appends "create node rollout rss_kib processes" to $2.
run_vcm() {
  local name=$1 out=$2 kc="$work/$1.kubeconfig" t0 t1 t2 t3 id rss
  t0=$(now)
  "$vcm" cluster create --name "$name" --wait -o json >"$work/$name.json" 2>"$work/$name.log"
  t1=$(now)
  id=$(jq -r .id "$work/$name.json")
  "$vcm" cluster kubeconfig "$name" --output-file "$kc" >>"$work/$name.log" 2>&1
  wait_nodes "$kc"
  t2=$(now)
  rollout "$kc"
  t3=$(now)
  rss=$(rss_of "$id")
  rss_by_program "$id" >"$work/programs-vcm"
  rss_of "--data-dir=$work/vcm/local/etcd" | cut -d' ' -f1 >>"$etcd_rss_samples"
  "$vcm" cluster delete "$name" --wait >>"$work/$name.log" 2>&1
  echo "$(secs "$t0" "$t1") $(secs "$t0" "$t2") $(secs "$t0" "$t3") $rss $(apiserver_secs "$id") $(server_ready_secs "$work/$name.json")" >>"$out"
}

# The server's own create-to-Ready of the cluster in JSON file $1: ready_at - created_at.
server_ready_secs() {
  jq -r '"\(.created_at) \(.ready_at)"' "$1" | awk '
    function t(s) { return substr(s, 12, 2) * 3600 + substr(s, 15, 2) * 60 + substr(s, 18) + 0 }
    { printf "%.2f", t($2) - t($1) }'
}

# From vcm's log: seconds from "cluster accepted" to "kube-apiserver ready" for cluster $1.
apiserver_secs() {
  awk -v id="cluster.id=$1" '
    function t(s) { return substr(s, 12, 2) * 3600 + substr(s, 15, 2) * 60 + substr(s, 18) + 0 }
    index($0, id) && /cluster accepted/ { a = t($1) }
    index($0, id) && /kube-apiserver ready/ { b = t($1) }
    END { if (a && b) printf "%.2f", b - a; else printf "nan" }' "$work/server.log"
}

# --- rounds ----------------------------------------------------------------------------------------
load_before=$(uptime)
log "warm-up (not counted): one cluster with each tool"
run_kwokctl kwok-warmup "$work/warmup-kwokctl"
run_vcm vcm-warmup "$work/warmup-vcm"
: >"$work/results-kwokctl" && : >"$work/results-vcm" && : >"$etcd_rss_samples"
for i in $(seq 1 "$rounds"); do
  # NB: one call per line: under `a && b`, bash ignores `set -e` inside `a`.
  if ((i % 2)); then
    run_kwokctl "kwok-$i" "$work/results-kwokctl"
    run_vcm "vcm-$i" "$work/results-vcm"
  else
    run_vcm "vcm-$i" "$work/results-vcm"
    run_kwokctl "kwok-$i" "$work/results-kwokctl"
  fi
  log "round $i/$rounds: kwokctl $(tail -1 "$work/results-kwokctl") | vcm $(tail -1 "$work/results-vcm")"
done
load_after=$(uptime)
hosts=$(curl -fsS -H @"$work/auth-header" "$VCM_ADDR/v1/hosts")

# --- report ----------------------------------------------------------------------------------------
# Column $2 of file $1 (optionally divided by $3): "median (min..max)".
stat() {
  awk -v c="$2" -v div="${3:-1}" '{ print $c / div }' "$1" | sort -g | awk '
    { v[NR] = $1 }
    END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%.2f (%.2f..%.2f)", m, v[1], v[NR] }'
}
median() { awk -v c="$2" -v div="${3:-1}" '{ print $c / div }' "$1" | sort -g | awk '
    { v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

k=$work/results-kwokctl v=$work/results-vcm
mem_total_mib=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
vcm_rss_mib=$(median "$v" 4 1024)
fits=$(awk -v t="$mem_total_mib" -v r="$vcm_rss_mib" 'BEGIN { print int((t - 2048) / r) }')
derived=$(jq -r '[.items[] | select(.name == "local") | .max_clusters][0] // "unset"' <<<"$hosts")

cat <<EOF

vcm local driver vs kwokctl v$KWOK_VERSION ($rounds rounds, alternating; Kubernetes $K8S_VERSION, etcd $ETCD_VERSION; $(nproc) cores, $mem_total_mib MiB)
load before: ${load_before#*load}
load after:  ${load_after#*load}

| figure (s, MiB)        | kwokctl               | vcm                   | vcm/kwokctl (median) | goal   |
|------------------------|-----------------------|-----------------------|----------------------|--------|
| create returned        | $(stat "$k" 1) | $(stat "$v" 1) | $(ratio "$(median "$v" 1)" "$(median "$k" 1)") (not like for like) | |
| node Ready             | $(stat "$k" 2) | $(stat "$v" 2) | $(ratio "$(median "$v" 2)" "$(median "$k" 2)") | <= 0.8 |
| Deployment rolled out  | $(stat "$k" 3) | $(stat "$v" 3) | $(ratio "$(median "$v" 3)" "$(median "$k" 3)") | |
| RSS per cluster (MiB)  | $(stat "$k" 4 1024) | $(stat "$v" 4 1024) | $(ratio "$(median "$v" 4)" "$(median "$k" 4)") | <= 0.8 |
| processes per cluster  | $(median "$k" 5) | $(median "$v" 5) | | |

vcm, where "create returned" goes: accepted to its kube-apiserver ready (server log) $(stat "$v" 6) s;
  created_at to ready_at (the server's Ready: + controller-manager, scheduler, kwok, node Ready, default
  ServiceAccount) $(stat "$v" 7) s; the rest is the CLI's --wait poll (1 s interval).
RSS by program, last round (MiB): kwokctl $(cat "$work/programs-kwokctl")
                                  vcm     $(cat "$work/programs-vcm")

vcm's shared etcd (one for all clusters, not in the vcm column): $(stat "$etcd_rss_samples" 1 1024) MiB RSS
warm-up (not counted; vcm's includes starting its shared etcd): kwokctl $(cat "$work/warmup-kwokctl"), vcm $(cat "$work/warmup-vcm")
  (create node rollout rss_kib processes)
how many clusters fit: (MemTotal $mem_total_mib MiB - 2048 MiB reserve) / vcm's $vcm_rss_mib MiB = $fits;
  vcm's own derived capacity (GET /v1/hosts max_clusters): $derived
floor: a bare kube-apiserver's start-to-/readyz, as benches/lifecycle.rs measures it (bench/run.sh), see docs/PERFORMANCE.md
EOF

#!/usr/bin/env bash
# vcm-ci.sh: a temporary Kubernetes cluster from vcm for one CI job. Needs bash, curl and jq.
#
#   vcm-ci.sh up        create (or reuse) this job's cluster, wait until Ready, write its kubeconfig
#   vcm-ci.sh down [ID] delete it (by id or name; default: this job's cluster); gone already is fine
#   vcm-ci.sh pr        find the Ready cluster vcm's webhook made for this pull request's head
#                       commit, wait for it, write its kubeconfig (never creates, never deletes)
#
# `up` and `pr` print `id=…`, `name=…` and `kubeconfig=…` lines on stdout (GitHub's
# $GITHUB_OUTPUT format); progress and errors go to stderr. The GitHub Action (action.yml),
# the Bitbucket step (ci/bitbucket/) and the GitLab template (ci/gitlab/) all call this script;
# docs/CI-EXAMPLES.md, "Packaged recipes", shows them.
#
# Environment (all optional but VCM_ADDR):
#   VCM_ADDR                vcm's URL (https://…; plain http:// only to loopback, or with
#                           VCM_ALLOW_INSECURE_HTTP=true on a private network)
#   VCM_CACERT              CA bundle that signed vcm's certificate (curl --cacert)
#   VCM_NAME                cluster name (default: from the CI run, see below)
#   VCM_SIZE, VCM_KUBERNETES_VERSION, VCM_TTL (default 1h), VCM_IDLE_TIMEOUT
#   VCM_LABELS              extra labels, `k=v,k2=v2` (they win over the ones made here)
#   VCM_TIMEOUT             how long to wait for Ready (default 10m; `90s`, `10m`, `1h30m`)
#   VCM_KUBECONFIG_FILE     where to write the kubeconfig (default:
#                           ${RUNNER_TEMP:-${TMPDIR:-/tmp}}/vcm-<name>.kubeconfig, mode 0600)
#   VCM_KUBECONFIG_TTL      lifetime of the kubeconfig's credential (vcm's default: 1h)
#   VCM_IDEMPOTENCY_KEY     the create's Idempotency-Key (default: from the CI run and the name)
#   VCM_AUDIENCE            audience of the GitHub OIDC token asked for (default vcm)
#
# Credential, the first one found: VCM_TOKEN (a vcm API token); GitHub Actions' OIDC ID token
# (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, set by `permissions: id-token: write`; asked for again
# before it expires); Bitbucket Pipelines' BITBUCKET_STEP_OIDC_TOKEN (a step with `oidc`);
# GitLab's VCM_ID_TOKEN (the job's `id_tokens: VCM_ID_TOKEN: aud: vcm`). vcm takes CI OIDC ID
# tokens as bearer tokens ([[auth.oidc]] in its configuration decides role and team).
#
# NB: these VCM_* variables are the client's. A vcm *server* reads VCM_* as its configuration,
# so do not start one in an environment that has them set.

set -euo pipefail
umask 077 # every file written here (responses, the kubeconfig) is the caller's alone

readonly PROG=vcm-ci
# A GitHub OIDC token is asked for again when it is this old: GitHub's live 5 minutes, and a
# wait for Ready or for the pull request's cluster can take longer.
readonly OIDC_REFRESH_SECS=240
# Transient answers (no connection, 429, 502-504) are retried this long outside of waits.
readonly RETRY_SECS=60
# Seconds between two looks at a cluster, and between two "still waiting" lines.
readonly POLL_SECS=2
readonly NOTE_SECS=30

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
emit() { printf '%s=%s\n' "$1" "$2"; }

usage() {
	sed -n '2,8s/^# \{0,1\}//p' "$0"
}

need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 is not installed; this script needs bash, curl and jq"
}

# === durations, names and labels ===

# Seconds in a duration: `90`, `45s`, `10m`, `1h30m`, `1d`.
seconds() {
	local s=$1 total=0 n
	if [[ $s =~ ^[0-9]+$ ]]; then
		echo "$((10#$s))"
		return
	fi
	[[ $s =~ ^([0-9]+[smhd])+$ ]] || die "not a duration: '$s' (use e.g. 90s, 10m, 1h30m)"
	while [[ $s =~ ^([0-9]+)([smhd])(.*)$ ]]; do
		n=$((10#${BASH_REMATCH[1]}))
		case ${BASH_REMATCH[2]} in
		s) total=$((total + n)) ;;
		m) total=$((total + n * 60)) ;;
		h) total=$((total + n * 3600)) ;;
		d) total=$((total + n * 86400)) ;;
		esac
		s=${BASH_REMATCH[3]}
	done
	echo "$total"
}

# A DNS-1123 label of at most 40 characters (vcm's cluster names); a name cut short gets a
# checksum of the whole so two long names stay apart.
dns_name() {
	local s sum
	s=$(printf '%s' "$1" | LC_ALL=C tr '[:upper:]' '[:lower:]' | LC_ALL=C tr -c 'a-z0-9' '-')
	s=$(printf '%s' "$s" | tr -s '-')
	s=${s#-}
	s=${s%-}
	if ((${#s} > 40)); then
		sum=$(printf '%s' "$1" | cksum | cut -d' ' -f1)
		s=${s:0:33}
		s="${s%-}-$(printf '%08x' "$sum" | cut -c1-6)"
	fi
	printf '%s' "$s"
}

# A Kubernetes label value: at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric.
label_value() {
	local s
	s=$(printf '%s' "$1" | LC_ALL=C tr -c 'A-Za-z0-9._-' '-')
	s=${s:0:63}
	while [[ $s =~ ^[^A-Za-z0-9] ]]; do s=${s:1}; done
	while [[ $s =~ [^A-Za-z0-9]$ ]]; do s=${s%?}; done
	printf '%s' "$s"
}

# The `repo` label vcm's webhooks put on pull-request clusters: `Owner/Name` -> `owner.name`.
repo_label() { label_value "$(printf '%s' "$1" | LC_ALL=C tr 'A-Z/' 'a-z.')"; }

# === the CI platform ===

# Sets PLATFORM (github|bitbucket|gitlab|none), RUN (what identifies this job's run), NAME_BASE,
# REPO, PR and SHA from the platform's own variables.
detect_platform() {
	PLATFORM=none RUN='' NAME_BASE='' REPO='' PR='' SHA=''
	if [[ ${GITHUB_ACTIONS:-} == true ]]; then
		PLATFORM=github
		RUN="${GITHUB_RUN_ID:-}-${GITHUB_RUN_ATTEMPT:-1}-${GITHUB_JOB:-}"
		NAME_BASE="gh-$RUN"
		REPO=${GITHUB_REPOSITORY:-}
		SHA=${GITHUB_SHA:-}
		if [[ ${GITHUB_REF:-} =~ ^refs/pull/([0-9]+)/ ]]; then PR=${BASH_REMATCH[1]}; fi
		# NB: a pull request's GITHUB_SHA is the merge commit; the head is in the event.
		if [[ -r ${GITHUB_EVENT_PATH:-} ]]; then
			local head number
			head=$(jq -r '.pull_request.head.sha // empty' "$GITHUB_EVENT_PATH" 2>/dev/null || true)
			number=$(jq -r '.pull_request.number // empty' "$GITHUB_EVENT_PATH" 2>/dev/null || true)
			SHA=${head:-$SHA}
			PR=${PR:-$number}
		fi
	elif [[ -n ${BITBUCKET_BUILD_NUMBER:-} ]]; then
		PLATFORM=bitbucket
		RUN="${BITBUCKET_PIPELINE_UUID:-$BITBUCKET_BUILD_NUMBER}-${BITBUCKET_STEP_UUID:-}"
		local step=${BITBUCKET_STEP_UUID:-}
		step=${step//[\{\}]/}
		NAME_BASE="bb-$BITBUCKET_BUILD_NUMBER-${step:0:8}"
		REPO=${BITBUCKET_REPO_FULL_NAME:-}
		PR=${BITBUCKET_PR_ID:-}
		# Bitbucket's webhooks carry 12-character hashes; the labels match them.
		local commit=${BITBUCKET_COMMIT:-}
		SHA=${commit:0:12}
	elif [[ ${GITLAB_CI:-} == true ]]; then
		PLATFORM=gitlab
		RUN="${CI_PIPELINE_ID:-}-${CI_JOB_ID:-}"
		NAME_BASE="gl-$RUN"
		REPO=${CI_PROJECT_PATH:-}
		PR=${CI_MERGE_REQUEST_IID:-}
		SHA=${CI_COMMIT_SHA:-}
	fi
}

# The cluster name: VCM_NAME, else one made from the run (the same in `up` and `down`).
cluster_name() {
	if [[ -n ${VCM_NAME:-} ]]; then
		printf '%s' "$VCM_NAME"
	elif [[ -n $NAME_BASE ]]; then
		dns_name "$NAME_BASE"
	fi
}

# === credential and HTTP ===

TOKEN='' TOKEN_KIND='' TOKEN_AT=0

pick_credential() {
	if [[ -n ${VCM_TOKEN:-} ]]; then
		TOKEN_KIND='VCM_TOKEN' TOKEN=$VCM_TOKEN
	elif [[ -n ${ACTIONS_ID_TOKEN_REQUEST_URL:-} && -n ${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-} ]]; then
		TOKEN_KIND='GitHub OIDC'
	elif [[ -n ${BITBUCKET_STEP_OIDC_TOKEN:-} ]]; then
		TOKEN_KIND='BITBUCKET_STEP_OIDC_TOKEN' TOKEN=$BITBUCKET_STEP_OIDC_TOKEN
	elif [[ -n ${VCM_ID_TOKEN:-} ]]; then
		TOKEN_KIND='VCM_ID_TOKEN' TOKEN=$VCM_ID_TOKEN
	else
		die "no credential for vcm. Set VCM_TOKEN (a vcm API token, as a secret), or give the job" \
			"its platform's OIDC ID token: GitHub Actions 'permissions: id-token: write' (sets" \
			"ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN); Bitbucket Pipelines" \
			"'oidc: true' on the step (sets BITBUCKET_STEP_OIDC_TOKEN); GitLab CI" \
			"'id_tokens: VCM_ID_TOKEN: aud: vcm' on the job (sets VCM_ID_TOKEN)"
	fi
}

# Ask GitHub for an ID token for VCM_AUDIENCE when there is none or it is about to expire.
refresh_token() {
	[[ $TOKEN_KIND == 'GitHub OIDC' ]] || return 0
	if [[ -n $TOKEN ]] && ((SECONDS - TOKEN_AT < OIDC_REFRESH_SECS)); then return 0; fi
	local aud sep='?' status
	aud=$(jq -rn --arg v "${VCM_AUDIENCE:-vcm}" '$v | @uri')
	[[ $ACTIONS_ID_TOKEN_REQUEST_URL != *\?* ]] || sep='&'
	printf 'Authorization: Bearer %s\n' "$ACTIONS_ID_TOKEN_REQUEST_TOKEN" >"$WORK/gh-auth"
	status=$(curl -sS --max-time 30 --retry 3 -o "$WORK/gh-token" -w '%{http_code}' \
		-H @"$WORK/gh-auth" -H 'Accept: application/json' \
		"$ACTIONS_ID_TOKEN_REQUEST_URL${sep}audience=$aud") || status=000
	[[ $status == 200 ]] || die "GitHub gave no OIDC ID token (HTTP $status): does the job have" \
		"'permissions: id-token: write'?"
	TOKEN=$(jq -r '.value // empty' "$WORK/gh-token")
	[[ -n $TOKEN ]] || die "GitHub's OIDC token answer has no value"
	TOKEN_AT=$SECONDS
}

# api METHOD PATH [BODY [CURL ARGS…]]: STATUS gets the HTTP status (000: no answer), the body is
# in $WORK/body. Transient failures are retried until RETRY_UNTIL.
api() {
	local method=$1 path=$2 data=${3-} wait rc
	shift $(($# < 3 ? $# : 3))
	while :; do
		refresh_token
		printf 'Authorization: Bearer %s\n' "$TOKEN" >"$WORK/auth" # a header file: not in `ps`
		local args=(-sS -X "$method" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}'
			--max-time 30 -H @"$WORK/auth" "$@")
		[[ -z ${VCM_CACERT:-} ]] || args+=(--cacert "$VCM_CACERT")
		[[ -z $data ]] || args+=(-H 'Content-Type: application/json' --data-binary "$data")
		: >"$WORK/body"
		rc=0
		STATUS=$(curl "${args[@]}" "$ADDR$path") || rc=$?
		case $rc in
		0) ;;
		6 | 7 | 28 | 35 | 52 | 55 | 56) STATUS=000 ;; # resolve, connect, timeout, TLS, dropped
		*) die "$method $ADDR$path: curl failed (exit $rc)" ;;
		esac
		case $STATUS in 000 | 429 | 502 | 503 | 504) ;; *) return 0 ;; esac
		((SECONDS < RETRY_UNTIL)) || return 0
		wait=$(sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*/\1/p' "$WORK/headers" 2>/dev/null | head -1)
		wait=${wait:-$POLL_SECS}
		((wait <= 10)) || wait=10
		log "vcm answered ${STATUS/#000/nothing} to $method $path; retrying in ${wait}s"
		sleep "$wait"
	done
}

# Stop with vcm's error: its code and message (`{"error": {"code", "message"}}`).
api_error() {
	[[ $STATUS != 000 ]] || die "$1: no answer from vcm at $ADDR"
	local code message
	code=$(jq -r '.error.code // .code // empty' "$WORK/body" 2>/dev/null || true)
	message=$(jq -r '.error.message // .message // empty' "$WORK/body" 2>/dev/null || true)
	[[ -n $code ]] || die "$1: HTTP $STATUS from vcm: $(head -c 300 "$WORK/body")"
	die "$1: vcm answered $STATUS $code: $message"
}

field() { jq -r "$1 // empty" "$WORK/body"; }

# === commands ===

cmd_up() {
	local name labels body key id phase
	name=$(cluster_name)
	labels=$(jq -cn --arg ci "${PLATFORM/#none/}" --arg repo "$(repo_label "$REPO")" \
		--arg pr "$(label_value "$PR")" --arg sha "$(label_value "$SHA")" --arg extra "${VCM_LABELS:-}" '
		({ci: $ci, repo: $repo, pr: $pr, sha: $sha} | with_entries(select(.value != "")))
		+ ($extra | split(",") | map(gsub("^\\s+|\\s+$"; "")) | map(select(. != ""))
		   | map(split("=") | {key: .[0], value: (.[1:] | join("="))}) | from_entries)')
	body=$(jq -cn --arg name "$name" --arg size "${VCM_SIZE:-}" \
		--arg version "${VCM_KUBERNETES_VERSION:-}" --arg ttl "${VCM_TTL:-1h}" \
		--arg idle "${VCM_IDLE_TIMEOUT:-}" --argjson labels "$labels" '
		{name: $name, size: $size, kubernetes_version: $version, ttl: $ttl,
		 idle_timeout: $idle, labels: $labels} | with_entries(select(.value != "" and .value != {}))')
	# The same run retried gets the same cluster; without a run, one key covers this call's retries.
	key=${VCM_IDEMPOTENCY_KEY:-vcm-ci/$PLATFORM/${RUN:-$$-$RANDOM-$(date +%s)}/$name}
	log "creating cluster ${name:-(named by vcm)} at $ADDR as $TOKEN_KIND"
	while :; do
		api POST /v1/clusters "$body" -H "Idempotency-Key: $key"
		case $STATUS in
		200 | 201 | 202)
			id=$(field .id) name=$(field .name)
			if grep -qi '^idempotent-replayed: *true' "$WORK/headers"; then
				log "the same run's cluster $name ($id) is reused"
			fi
			break
			;;
		409) [[ $(field .error.code) == name_taken ]] || api_error "creating cluster $name" ;;
		*) api_error "creating cluster ${name:-}" ;;
		esac
		# The name is taken: reuse the cluster if this credential can see it and it is alive.
		api GET "/v1/clusters/$name"
		case $STATUS in
		200) ;;
		404) die "cluster name '$name' is taken by a cluster this credential cannot see; set" \
			"VCM_NAME to another name" ;;
		*) api_error "reading cluster $name" ;;
		esac
		id=$(field .id) phase=$(field .phase)
		case $phase in
		Deleting)
			log "cluster name '$name' is held by $id, being deleted; waiting for it to go"
			wait_gone "$id"
			;;
		Failed) die "cluster $name ($id) failed: $(field .message); delete it" \
			"($PROG.sh down $id) or set another VCM_NAME" ;;
		Deleted) ;;
		*)
			log "cluster $name ($id) exists already ($phase): reused"
			break
			;;
		esac
		((SECONDS < DEADLINE)) || die "cluster name '$name' is still taken after" \
			"$((SECONDS - START))s (VCM_TIMEOUT=$TIMEOUT)"
	done
	emit id "$id"
	emit name "$name"
	wait_ready "$id" "$name"
	write_kubeconfig "$id" "$name"
}

# Wait until cluster $1 is Ready, saying on stderr when its phase changes and every NOTE_SECS.
wait_ready() {
	local id=$1 name=$2 phase last='' message note=0
	while :; do
		api GET "/v1/clusters/$id"
		[[ $STATUS == 200 ]] || api_error "reading cluster $name ($id)"
		phase=$(field .phase) message=$(field .message)
		if [[ $phase != "$last" ]] || ((SECONDS >= note)); then
			log "cluster $name ($id): $phase after $((SECONDS - START))s${message:+ ($message)}"
			last=$phase note=$((SECONDS + NOTE_SECS))
		fi
		case $phase in
		Ready) return 0 ;;
		Failed) die "cluster $name ($id) failed: $message" ;;
		Deleting | Deleted) die "cluster $name ($id) is $phase ($(field .delete_reason))" ;;
		esac
		((SECONDS < DEADLINE)) || die "cluster $name ($id) is still $phase after" \
			"$((SECONDS - START))s (VCM_TIMEOUT=$TIMEOUT); its ttl removes it, or run '$PROG.sh down $id'"
		sleep "$POLL_SECS"
	done
}

# Wait until cluster $1 is Deleted (or gone from view).
wait_gone() {
	while :; do
		api GET "/v1/clusters/$1"
		[[ $STATUS != 404 ]] || return 0
		[[ $STATUS == 200 ]] || api_error "reading cluster $1"
		[[ $(field .phase) != Deleted ]] || return 0
		((SECONDS < DEADLINE)) || die "cluster $1 is still $(field .phase) after" \
			"$((SECONDS - START))s (VCM_TIMEOUT=$TIMEOUT)"
		sleep "$POLL_SECS"
	done
}

write_kubeconfig() {
	local id=$1 name=$2 file body='{}'
	file=${VCM_KUBECONFIG_FILE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/vcm-$name.kubeconfig}
	[[ -z ${VCM_KUBECONFIG_TTL:-} ]] || body=$(jq -cn --arg ttl "$VCM_KUBECONFIG_TTL" '{ttl: $ttl}')
	api POST "/v1/clusters/$id/kubeconfig" "$body"
	[[ $STATUS == 200 ]] || api_error "taking a kubeconfig of cluster $name ($id)"
	mkdir -p "$(dirname "$file")"
	cp "$WORK/body" "$file.tmp.$$"
	mv -f "$file.tmp.$$" "$file"
	log "kubeconfig of cluster $name written to $file"
	emit kubeconfig "$file"
}

cmd_down() {
	local target=${1:-}
	[[ -n $target ]] || target=$(cluster_name)
	[[ -n $target ]] || die "down: which cluster? Give its id or name, or set VCM_NAME"
	api DELETE "/v1/clusters/$target"
	case $STATUS in
	200 | 202) log "cluster $(field .name) ($(field .id)) is being deleted" ;;
	404) log "cluster $target is gone already" ;;
	*) api_error "deleting cluster $target" ;;
	esac
}

cmd_pr() {
	local provider query want id name seen='' last='' note=0
	case $PLATFORM in
	github | bitbucket) provider=$PLATFORM ;;
	*) die "pr: vcm makes pull-request clusters for GitHub and Bitbucket webhooks; this is not a" \
		"GitHub Actions or Bitbucket Pipelines job (use 'up')" ;;
	esac
	[[ -n $PR ]] || die "pr: this run is not for a pull request (no PR number: GITHUB_REF" \
		"refs/pull/<n>/merge or BITBUCKET_PR_ID)"
	[[ -n $REPO && -n $SHA ]] || die "pr: the repository or commit of this run is unknown"
	local -a labels=("provider=$provider" "repo=$(repo_label "$REPO")" "pr=$(label_value "$PR")"
		"sha=$(label_value "$SHA")")
	want=${labels[*]}
	query=$(printf '&label=%s' "${labels[@]}")
	query=${query#&}
	log "waiting for the pull request's cluster ($want)"
	while :; do
		api GET "/v1/clusters?$query"
		[[ $STATUS == 200 ]] || api_error "listing clusters ($want)"
		id=$(field '[.items[] | select(.phase == "Ready")][0].id')
		name=$(field '[.items[] | select(.phase == "Ready")][0].name')
		[[ -z $id ]] || break
		seen=$(field '[.items[] | "\(.name) \(.phase)"] | join(", ") | select(. != "")')
		seen=${seen:-none}
		if [[ $seen != "$last" ]] || ((SECONDS >= note)); then
			log "after $((SECONDS - START))s: ${seen/#none/no cluster yet}"
			last=$seen note=$((SECONDS + NOTE_SECS))
		fi
		((SECONDS < DEADLINE)) || die "no Ready cluster for this pull request after" \
			"$((SECONDS - START))s (VCM_TIMEOUT=$TIMEOUT): labels $want; seen: $seen. Does a" \
			"[[pull_requests]] rule of vcm cover this repository, and may this credential see" \
			"that team's clusters?"
		sleep "$POLL_SECS"
	done
	log "found cluster $name ($id), Ready"
	emit id "$id"
	emit name "$name"
	write_kubeconfig "$id" "$name"
}

main() {
	local cmd=${1:-}
	case $cmd in
	up | down | pr) ;;
	-h | --help | help)
		usage
		return 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
	need curl
	need jq
	[[ -n ${VCM_ADDR:-} ]] || die "VCM_ADDR is not set: vcm's URL, e.g. https://vcm.example.com"
	ADDR=${VCM_ADDR%/}
	case $ADDR in
	https://*) ;;
	http://127.[0-9]* | http://localhost | http://localhost[:/]* | http://\[::1\]*) ;;
	http://*)
		[[ ${VCM_ALLOW_INSECURE_HTTP:-} == true ]] || die "VCM_ADDR $ADDR is plain HTTP to" \
			"another machine: the credential would travel in clear text. Use https:// (VCM_CACERT" \
			"for a private CA), or set VCM_ALLOW_INSECURE_HTTP=true on a private network"
		;;
	*) die "VCM_ADDR must start with https:// (or http:// on loopback): '$ADDR'" ;;
	esac
	local wait_secs
	TIMEOUT=${VCM_TIMEOUT:-10m}
	wait_secs=$(seconds "$TIMEOUT")
	START=$SECONDS
	DEADLINE=$((START + wait_secs))
	RETRY_UNTIL=$DEADLINE
	[[ $cmd != down ]] || RETRY_UNTIL=$((START + RETRY_SECS))
	WORK=$(mktemp -d)
	trap 'rm -rf "$WORK"' EXIT
	detect_platform
	pick_credential
	shift
	case $cmd in
	up) cmd_up ;;
	down) cmd_down "${1:-}" ;;
	pr) cmd_pr ;;
	esac
}

main "$@"

# vcm's two commands: `make run` (quick start) and `make test` (everything CI runs).
.PHONY: run test k8s-bins node-images py-tools promtool ui-tools postgres fmt lint unit build

CARGO ?= cargo

## Build the Kubernetes binaries (cached under .cache/k8s/<versions>, or $VCM_K8S_BIN_DIR).
k8s-bins:
	@scripts/k8s-bins.sh >/dev/null

## Test bed tier C (a real node): Debian's containerd, runc and CNI plugins, and locally built
## OCI images (cached beside the binaries). Installs the packages with apt-get when missing.
node-images: k8s-bins
	@scripts/node-images.sh >/dev/null

## Quick start: build what is needed and run the server with the embedded defaults.
run: k8s-bins
	$(CARGO) run --release -- server --dev

## The Python tools tests use (schemathesis, the Kubernetes Python client), pinned, in .cache/venv.
py-tools:
	@scripts/py-tools.sh >/dev/null

## Prometheus' promtool, for tests/monitoring.rs (cached under .cache/promtool/<version>).
promtool:
	@scripts/promtool.sh >/dev/null

## The browser test's tools (tests/ui.rs): Debian's Chromium (apt-get when missing) and
## playwright-core, pinned, in .cache/ui-tools (never a browser download).
ui-tools:
	@scripts/ui-tools.sh >/dev/null

## PostgreSQL 15's server binaries, for the store's tests on a real PostgreSQL (a throw-away
## server per test). Installs postgresql-15 with apt-get when missing.
postgres:
	@scripts/postgres.sh >/dev/null

## Every check CI runs: formatting, lints, and all tests against real Kubernetes binaries.
test: k8s-bins node-images py-tools promtool ui-tools postgres
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	scripts/run-tests.sh

fmt:
	$(CARGO) fmt

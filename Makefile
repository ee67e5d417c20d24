# vcm's two commands: `make run` (quick start) and `make test` (everything CI runs).
.PHONY: run test k8s-bins fmt lint unit build

CARGO ?= cargo

## Build the Kubernetes binaries (cached under .cache/k8s/<versions>, or $VCM_K8S_BIN_DIR).
k8s-bins:
	@scripts/k8s-bins.sh >/dev/null

## Quick start: build what is needed and run the server with the embedded defaults.
run: k8s-bins
	$(CARGO) run --release -- server --dev

## Every check CI runs: formatting, lints, and all tests against real Kubernetes binaries.
test: k8s-bins
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	scripts/run-tests.sh

fmt:
	$(CARGO) fmt

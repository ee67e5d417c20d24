# syntax=docker/dockerfile:1
# vcm's image: the vcm binary, the pinned vclusterctl and helm it runs, and the vcluster chart,
# on a distroless base (glibc, CA certificates, no shell), as a non-root user.
#
#   docker build -t registry.example.internal/vcm:0.1.0 .
#
# The Helm chart in deploy/chart/vcm runs it (README: "Install on Kubernetes"). Versions come
# from scripts/k8s-versions.env, like the test bed's binaries.

ARG RUST_VERSION=1.95
ARG GO_VERSION=1.26

# --- vclusterctl, helm and the vcluster chart, from Go modules ---------------------------------
FROM golang:${GO_VERSION}-bookworm AS tools
ENV GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
COPY scripts/k8s-versions.env /versions.env
RUN . /versions.env \
 && GOBIN=/out go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}" \
      "helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}"
# NB: a wrapper module pins the vcluster release (the proxy does not list its versions);
# loft-sh's pre-release API modules are not in the public checksum database.
RUN . /versions.env && mkdir /vc && cd /vc \
 && go mod init vcm.local/vclusterbuild \
 && go mod edit "-require=github.com/loft-sh/vcluster@v${VCLUSTER_VERSION}" \
 && GONOSUMDB=github.com/loft-sh go build -trimpath \
      -ldflags "-s -w -X main.version=${VCLUSTER_VERSION}" -o /out/ \
      github.com/loft-sh/vcluster/cmd/vclusterctl \
 && cp -r "$(go env GOMODCACHE)/github.com/loft-sh/vcluster@v${VCLUSTER_VERSION}/chart" /out/vcluster-chart \
 && chmod -R a+rX,u+w /out/vcluster-chart

# --- vcm --------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin vcm \
 && install -D -m 0755 target/release/vcm /out/vcm \
 && mkdir -p /out/data

# --- the image ---------------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/vcm /usr/local/bin/vcm
COPY --from=tools /out/helm /out/vclusterctl /opt/vcm/bin/
COPY --from=tools /out/vcluster-chart /opt/vcm/vcluster-chart
# The chart mounts a volume here; without one, the embedded store lives in the container.
COPY --from=build --chown=65532:65532 /out/data /var/lib/vcm
WORKDIR /var/lib/vcm
USER 65532:65532
ENV HOME=/tmp
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/vcm"]
CMD ["server", "--config", "/etc/vcm/vcm.toml"]

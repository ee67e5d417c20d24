//! The configuration files of a tier-C node: containerd, the CNI chain, the kubelet and
//! kube-proxy. Every path points into the bed's directory, so two beds never share state.

use std::path::Path;

use super::Addresses;

/// The image containerd runs as every pod's sandbox (built by `scripts/node-images.sh`).
pub const SANDBOX_IMAGE: &str = "vcm.local/pause:3.10";
/// The pod address range inside a bed's network namespace (the same in every bed: each has
/// its own namespace).
pub const POD_CIDR: &str = "10.244.0.0/24";

/// containerd's `config.toml` (version 2).
///
/// NB: `restrict_oom_score_adj`: this machine has no CAP_SYS_RESOURCE, and runc then fails to
/// create sandboxes ("can't get final child's PID from pipe: EOF") when it tries to lower the
/// pause container's OOM score. `netns_mounts_under_state_dir` keeps pod network namespaces out
/// of the machine's `/run/netns`.
pub fn containerd(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{d}/containerd/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
"#
    )
}

/// The CNI chain: a bridge with masquerading (pods reach the API server on the host side of
/// the veth without the host routing back), host-local addresses, port mappings, loopback.
pub fn cni(dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "vcm-bed",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": POD_CIDR }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": dir.join("cni-ipam"),
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
            { "type": "loopback" },
        ],
    })
    .to_string()
}

/// The kubelet's configuration.
///
/// NB: `failCgroupV1: false`: this machine has cgroup v1 and the v1beta1 default refuses it.
/// Eviction and image garbage collection are off: imported images cannot be pulled again.
/// Callers authenticate with a client certificate of the bed's CA (the API server's kubelet
/// client certificate is the admin one); anonymous requests are refused.
pub fn kubelet(dir: &Path, a: &Addresses, ca: &Path) -> String {
    let d = dir.display();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup}
failSwapOn: false
containerRuntimeEndpoint: unix://{d}/containerd/containerd.sock
enforceNodeAllocatable: []
podLogsDir: {d}/pod-logs
address: {node}
port: 10250
readOnlyPort: 0
healthzPort: 0
resolvConf: {d}/resolv.conf
clusterDNS: []
evictionHard:
  memory.available: "0%"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
  imagefs.inodesFree: "0%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
makeIPTablesUtilChains: false
serializeImagePulls: false
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: {ca}
authorization:
  mode: AlwaysAllow
"#,
        cgroup = a.cgroup,
        node = a.node,
        ca = ca.display(),
    )
}

/// kube-proxy's configuration: iptables mode inside the bed's namespace (Services, the
/// `kubernetes` Service that in-cluster clients use, NodePorts on the node address).
pub fn kube_proxy(kubeconfig: &Path, a: &Addresses, node_name: &str) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: {POD_CIDR}
hostnameOverride: {node_name}
bindAddress: {node}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["{node}/32"]
conntrack:
  maxPerCore: 0
clientConnection:
  kubeconfig: {kubeconfig}
"#,
        node = a.node,
        kubeconfig = kubeconfig.display(),
    )
}

//! Real Kubernetes control-plane processes on this machine.
//!
//! The local driver runs one `kube-apiserver` per virtual cluster against etcd, and the test bed
//! starts the same processes (plus controller-manager, scheduler and kwok) for integration tests.
//! Both use these pieces: [`KubeBins`] finds the binaries, [`Pki`] mints a cluster's CA and
//! certificates, [`Supervised`] runs a process in its own process group and kills the whole group,
//! [`Etcd`] and [`ApiServer`] start and wait for the two components.

mod apiserver;
mod bins;
mod etcd;
mod etcd_pki;
mod kubeconfig;
mod ownership;
mod pki;
mod ports;
mod process;
mod tunnel;

pub use apiserver::{ApiServer, ApiServerOptions, EtcdClientFiles, wait_ready};
pub use bins::{
    BUILD_COMMAND, KubeBins, MissingBinary, RELEASE_BINARIES, cache_key, extra_releases,
    is_executable, minor_of, pinned_kubernetes_minor, version_of,
};
pub use etcd::{Etcd, EtcdOptions};
pub use etcd_pki::EtcdPki;
pub use kubeconfig::{Kubeconfig, KubeconfigUser};
pub use ownership::{FoundProcess, Ownership, find_owned_processes, ownership};
pub use pki::{ClientCert, Pki};
pub use ports::{PortLease, free_port, hold_port, is_port_held, release_port};
pub use process::{
    Supervised, SupervisedOptions, find_processes, is_alive, kill_group, log_tail, terminate_group,
};
pub use tunnel::{DialFuture, Tunnel, TunnelConnector, TunnelIo};

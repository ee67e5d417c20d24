//! The processes a local cluster runs besides its API server, and how each is started: flags,
//! identity, and the flag it is found by.

use std::path::{Path, PathBuf};

use super::LocalDriver;
use crate::driver::DriverError;

/// The user kwok authenticates as; bound to the `vcm:kwok` ClusterRole (see `bootstrap`).
pub(super) const KWOK_USER: &str = "vcm:kwok";

/// kwok's stage files (v0.8 has no built-in stages), beside the kwok binary.
const KWOK_STAGES: [&str; 5] = [
    "node-initialize.yaml",
    "node-heartbeat-with-lease.yaml",
    "pod-ready.yaml",
    "pod-complete.yaml",
    "pod-delete.yaml",
];

/// One process of a local cluster besides its API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Component {
    ControllerManager,
    Scheduler,
    Kwok,
}

// === impl Component ===

impl Component {
    /// In start order: the controllers before the node, so the node's pods have a scheduler.
    pub(super) const ALL: [Self; 3] = [Self::ControllerManager, Self::Scheduler, Self::Kwok];

    /// The binary (and the base name of its kubeconfig and log).
    pub(super) fn binary(self) -> &'static str {
        match self {
            Self::ControllerManager => "kube-controller-manager",
            Self::Scheduler => "kube-scheduler",
            Self::Kwok => "kwok",
        }
    }

    /// The client certificate's user (no groups). The controller-manager and scheduler use the
    /// names the built-in RBAC bindings (`system:kube-controller-manager`,
    /// `system:kube-scheduler`, `system:volume-scheduler`) grant their least privilege to.
    pub(super) fn user(self) -> &'static str {
        match self {
            Self::ControllerManager => "system:kube-controller-manager",
            Self::Scheduler => "system:kube-scheduler",
            Self::Kwok => KWOK_USER,
        }
    }

    pub(super) fn kubeconfig(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.kubeconfig", self.binary()))
    }

    /// The flag that identifies this process of the cluster whose components live in `dir`.
    pub(super) fn marker(self, dir: &Path) -> String {
        format!("--kubeconfig={}", self.kubeconfig(dir).display())
    }

    pub(super) fn args(self, driver: &LocalDriver, dir: &Path) -> Result<Vec<String>, DriverError> {
        let mut args = vec![self.marker(dir)];
        match self {
            Self::ControllerManager => args.extend([
                "--secure-port=0".into(),
                "--leader-elect=false".into(),
                "--controllers=*".into(),
                // NB: each controller gets its own ServiceAccount token, so what one controller
                // may do is what its built-in role says, not what the manager's identity may.
                "--use-service-account-credentials=true".into(),
                format!("--root-ca-file={}", dir.join("ca.crt").display()),
                format!(
                    "--service-account-private-key-file={}",
                    dir.join("sa.key").display()
                ),
                "--kube-api-qps=100".into(),
                "--kube-api-burst=200".into(),
            ]),
            Self::Scheduler => {
                args.extend(["--secure-port=0".into(), "--leader-elect=false".into()]);
            }
            Self::Kwok => {
                let stages = driver
                    .bins
                    .dir_of("kwok")
                    .map_err(|e| DriverError::Permanent(e.to_string()))?
                    .join("kwok-stages");
                args.extend([
                    "--manage-all-nodes=false".into(),
                    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".into(),
                    "--cidr=10.244.0.0/16".into(),
                    "--node-ip=10.244.0.1".into(),
                    "--node-lease-duration-seconds=40".into(),
                ]);
                for stage in KWOK_STAGES {
                    let path = stages.join(stage);
                    if !path.is_file() {
                        return Err(DriverError::Permanent(format!(
                            "kwok stage file {} is missing; rebuild the binaries with `{}`",
                            path.display(),
                            crate::controlplane::BUILD_COMMAND
                        )));
                    }
                    args.push(format!("--config={}", path.display()));
                }
            }
        }
        Ok(args)
    }
}

//! A scripted driver for tests of the reconciler and the service: each call takes the next
//! scripted outcome (or a default), and every call is recorded.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Driver, DriverError, Ensured, HostInfo};
use crate::controlplane::Kubeconfig;
use crate::domain::{Cluster, ClusterId};

/// A scripted outcome.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Succeed (`ensure` reports Ready at a fake endpoint).
    Ok,
    /// Fail transiently with this message.
    Transient(String),
    /// Fail permanently with this message.
    Permanent(String),
    /// Report the cluster's resources lost.
    Lost(String),
    /// Report the cluster's host removed from the configuration.
    HostRemoved(String),
}

/// The scripted driver.
#[derive(Debug, Default)]
pub struct FakeDriver {
    ensure_script: Mutex<VecDeque<Outcome>>,
    delete_script: Mutex<VecDeque<Outcome>>,
    calls: Mutex<Vec<String>>,
    managed: Mutex<Vec<ClusterId>>,
    hosts: Mutex<Option<Vec<HostInfo>>>,
    ensure_delay: Mutex<std::time::Duration>,
    hosts_delay: Mutex<std::time::Duration>,
    hosts_calls: std::sync::atomic::AtomicUsize,
}

impl FakeDriver {
    /// Queue outcomes for `ensure`.
    pub fn script_ensure(&self, outcomes: impl IntoIterator<Item = Outcome>) {
        lock(&self.ensure_script).extend(outcomes);
    }

    /// Queue outcomes for `delete`.
    pub fn script_delete(&self, outcomes: impl IntoIterator<Item = Outcome>) {
        lock(&self.delete_script).extend(outcomes);
    }

    /// Calls so far, as `ensure <id>` / `delete <id>`.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// Replace the hosts the fake reports (default: one unlimited host `local`).
    pub fn set_hosts(&self, hosts: Vec<HostInfo>) {
        *lock(&self.hosts) = Some(hosts);
    }

    /// Make every `ensure` take this long (a slow create).
    pub fn set_ensure_delay(&self, delay: std::time::Duration) {
        *lock(&self.ensure_delay) = delay;
    }

    /// Make every `hosts` call take this long (a slow host probe).
    pub fn set_hosts_delay(&self, delay: std::time::Duration) {
        *lock(&self.hosts_delay) = delay;
    }

    /// How many times `hosts` was called.
    pub fn hosts_calls(&self) -> usize {
        self.hosts_calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Pretend the driver holds resources for `id` (for sweeper tests).
    pub fn add_managed(&self, id: ClusterId) {
        lock(&self.managed).push(id);
    }

    fn next(&self, script: &Mutex<VecDeque<Outcome>>) -> Result<(), DriverError> {
        match lock(script).pop_front().unwrap_or(Outcome::Ok) {
            Outcome::Ok => Ok(()),
            Outcome::Transient(m) => Err(DriverError::Transient(m)),
            Outcome::Permanent(m) => Err(DriverError::Permanent(m)),
            Outcome::Lost(m) => Err(DriverError::Lost(m)),
            Outcome::HostRemoved(host) => Err(DriverError::HostRemoved { host }),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl Driver for FakeDriver {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn hosts(&self) -> Vec<HostInfo> {
        self.hosts_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let delay = *lock(&self.hosts_delay);
        tokio::time::sleep(delay).await;
        lock(&self.hosts).clone().unwrap_or_else(|| {
            vec![HostInfo {
                name: "local".into(),
                labels: Default::default(),
                max_clusters: None,
                reachable: true,
                message: String::new(),
            }]
        })
    }

    async fn ensure(&self, cluster: &Cluster) -> Result<Ensured, DriverError> {
        lock(&self.calls).push(format!("ensure {}", cluster.id));
        let delay = *lock(&self.ensure_delay);
        tokio::time::sleep(delay).await;
        self.next(&self.ensure_script)?;
        let mut managed = lock(&self.managed);
        if !managed.contains(&cluster.id) {
            managed.push(cluster.id.clone());
        }
        Ok(Ensured::Ready {
            endpoint: format!("https://fake.invalid/{}", cluster.id),
        })
    }

    async fn delete(&self, id: &ClusterId) -> Result<(), DriverError> {
        lock(&self.calls).push(format!("delete {id}"));
        self.next(&self.delete_script)?;
        lock(&self.managed).retain(|m| m != id);
        Ok(())
    }

    async fn admin_kubeconfig(&self, _cluster: &Cluster) -> Result<Kubeconfig, DriverError> {
        Err(DriverError::Permanent(
            "the fake driver has no control plane".into(),
        ))
    }

    async fn list_managed(&self) -> Result<Vec<ClusterId>, DriverError> {
        Ok(lock(&self.managed).clone())
    }
}

//! The hosts as last probed, so placing a cluster never waits on the network.
//!
//! NB: probing a host is a network round trip (seconds for one that is down). Placement used to
//! probe every host while holding the placement lock, so one slow host queued every create
//! behind it. Now placement reads this cached view; a view older than `max_age` is still used
//! and refreshed in the background (one probe at a time), and only the very first placement of
//! a process waits for a probe. A host that went down since the last probe may still be chosen
//! once; its cluster then retries like any transient driver failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::RwLock;

use crate::driver::{Driver, HostInfo};

/// How old the view may grow before a placement triggers a background refresh.
pub const HOST_VIEW_MAX_AGE: Duration = Duration::from_secs(10);

/// The cached view of the driver's hosts.
#[derive(Debug)]
pub struct HostCache {
    view: RwLock<Option<(Instant, Vec<HostInfo>)>>,
    /// Serialises the first, blocking probe.
    first: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
    max_age: Duration,
}

// === impl HostCache ===

impl HostCache {
    /// An empty cache whose view counts as stale after `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Self {
            view: RwLock::new(None),
            first: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
            max_age,
        }
    }

    /// The hosts as last seen: waits for a probe only if there never was one; a stale view is
    /// returned at once and refreshed in the background.
    pub async fn get(self: &Arc<Self>, driver: &Arc<dyn Driver>) -> Vec<HostInfo> {
        if let Some((at, hosts)) = self.view.read().await.clone() {
            if at.elapsed() > self.max_age {
                self.refresh_in_background(driver);
            }
            return hosts;
        }
        let _first = self.first.lock().await;
        if let Some((_, hosts)) = self.view.read().await.clone() {
            return hosts; // another caller probed while we waited
        }
        self.probe(driver).await
    }

    /// Probe now and remember the result (`GET /v1/hosts` shows live reachability).
    pub async fn probe(&self, driver: &Arc<dyn Driver>) -> Vec<HostInfo> {
        let hosts = driver.hosts().await;
        *self.view.write().await = Some((Instant::now(), hosts.clone()));
        hosts
    }

    fn refresh_in_background(self: &Arc<Self>, driver: &Arc<dyn Driver>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return; // one refresh at a time
        }
        let (cache, driver) = (self.clone(), driver.clone());
        // NB: a detached task, bounded by the driver's own probe timeouts; it only writes the
        // view, so losing it at shutdown loses nothing.
        tokio::spawn(async move {
            // NB: cleared on drop, so a probe that panics or is cancelled does not stop every
            // later refresh.
            struct Done(Arc<HostCache>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.refreshing.store(false, Ordering::Release);
                }
            }
            let _done = Done(cache.clone());
            let hosts = cache.probe(&driver).await;
            let down = hosts.iter().filter(|h| !h.reachable).count();
            tracing::debug!(hosts = hosts.len(), down, "host view refreshed");
        });
    }
}

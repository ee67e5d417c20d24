//! Where a new cluster runs: the named host, or the least-loaded reachable host with room that
//! matches the selector.

use std::collections::{BTreeMap, HashMap};

use super::ClusterService;
use super::HostUse;
use crate::domain::{InvalidField, Phase};
use crate::driver::HostInfo;
use crate::error::{Error, Result};

/// `Retry-After` when every candidate host is full: clusters end on their own (TTL, idle,
/// CI deleting them), typically within minutes, so a retry sooner than this is mostly wasted.
const FULL_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);
/// `Retry-After` when no candidate host answers: reachability is probed again within seconds.
const UNREACHABLE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

// === impl ClusterService ===

impl ClusterService {
    /// Every host with its live cluster count.
    pub async fn hosts(&self) -> Result<Vec<HostUse>> {
        let hosts = self.hosts.probe(&self.driver).await;
        self.with_load(hosts).await
    }

    /// Every host as last probed (a probe at most the host view's age old; never waits on the
    /// network but the first time), with its live cluster count: for `/metrics`.
    pub async fn host_figures(&self) -> Result<Vec<HostUse>> {
        let hosts = self.hosts.get(&self.driver).await;
        self.with_load(hosts).await
    }

    /// `hosts`, each with its live cluster count.
    async fn with_load(&self, hosts: Vec<crate::driver::HostInfo>) -> Result<Vec<HostUse>> {
        let load = self.load().await?;
        Ok(hosts
            .into_iter()
            .map(|host| HostUse {
                clusters: load.get(&host.name).copied().unwrap_or(0),
                host,
            })
            .collect())
    }

    /// Live clusters per host (a Failed cluster not yet cleaned up still holds resources).
    async fn load(&self) -> Result<HashMap<String, u32>> {
        let mut load = HashMap::new();
        for c in self.store.live_clusters().await? {
            if c.phase == Phase::Failed && c.cleaned_up {
                continue;
            }
            *load.entry(c.host).or_insert(0) += 1;
        }
        Ok(load)
    }

    /// Choose a host from the cached view of the hosts (never a network probe; see
    /// `host_cache`). Callers hold the placement locks until the cluster is inserted.
    pub(super) async fn place(
        &self,
        host: Option<&str>,
        selector: Option<&BTreeMap<String, String>>,
    ) -> Result<String> {
        let hosts = self.hosts.get(&self.driver).await;
        let names = || {
            hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let candidates: Vec<&HostInfo> = match (host, selector) {
            (Some(_), Some(_)) => {
                return Err(InvalidField::new(
                    "host_selector",
                    "give either host or host_selector, not both",
                )
                .into());
            }
            (Some(name), None) => {
                let found: Vec<&HostInfo> = hosts.iter().filter(|h| h.name == name).collect();
                if found.is_empty() {
                    return Err(InvalidField::new(
                        "host",
                        format!("unknown host {name:?}; hosts: {}", names()),
                    )
                    .into());
                }
                found
            }
            (None, Some(sel)) => {
                let found: Vec<&HostInfo> = hosts
                    .iter()
                    .filter(|h| sel.iter().all(|(k, v)| h.labels.get(k) == Some(v)))
                    .collect();
                if found.is_empty() {
                    return Err(InvalidField::new(
                        "host_selector",
                        format!("no host has labels {sel:?}; hosts: {}", names()),
                    )
                    .into());
                }
                found
            }
            (None, None) => hosts.iter().collect(),
        };
        let reachable: Vec<&HostInfo> =
            candidates.iter().copied().filter(|h| h.reachable).collect();
        if reachable.is_empty() {
            // NB: names only: why a host is unreachable (addresses, TLS errors) is for operators,
            // in the log and `GET /v1/hosts`, not for every caller of a 503.
            for h in &candidates {
                tracing::warn!(host = %h.name, reason = %h.message, "host unreachable at placement");
            }
            let names: Vec<&str> = candidates.iter().map(|h| h.name.as_str()).collect();
            return Err(Error::try_later(
                "no_reachable_host",
                format!(
                    "no reachable host (unreachable: {}); retry later, or see GET /v1/hosts",
                    names.join(", ")
                ),
                UNREACHABLE_RETRY_AFTER,
            ));
        }
        let load = self.load().await?;
        let used = |h: &HostInfo| load.get(&h.name).copied().unwrap_or(0);
        let best = reachable
            .iter()
            .filter(|h| h.max_clusters.is_none_or(|max| used(h) < max))
            .min_by(|a, b| {
                // Least loaded by share of capacity; unlimited hosts count their clusters.
                let share = |h: &HostInfo| match h.max_clusters {
                    Some(max) if max > 0 => f64::from(used(h)) / f64::from(max),
                    _ => f64::from(used(h)),
                };
                share(a)
                    .total_cmp(&share(b))
                    .then_with(|| a.name.cmp(&b.name))
            });
        match best {
            Some(h) => Ok(h.name.clone()),
            None => {
                let full: Vec<String> = reachable
                    .iter()
                    .map(|h| format!("{} {}/{}", h.name, used(h), h.max_clusters.unwrap_or(0)))
                    .collect();
                Err(Error::try_later(
                    "no_capacity",
                    format!(
                        "no host has room for another cluster ({}); delete clusters or retry later",
                        full.join(", ")
                    ),
                    FULL_RETRY_AFTER,
                ))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Notify;

    use super::*;
    use crate::api::CreateClusterRequest;
    use crate::domain::{Principal, Role};
    use crate::driver::fake::FakeDriver;
    use crate::error::ErrorKind;
    use crate::service::ClusterPolicy;
    use crate::store::SqliteStore;

    fn mk_host(name: &str, region: &str, max: u32, reachable: bool) -> HostInfo {
        HostInfo {
            name: name.into(),
            labels: [("region".to_string(), region.to_string())].into(),
            max_clusters: Some(max),
            reachable,
            message: if reachable {
                String::new()
            } else {
                "connection refused".into()
            },
        }
    }

    async fn mk_service(hosts: Vec<HostInfo>) -> ClusterService {
        let store = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
        let driver = Arc::new(FakeDriver::default());
        driver.set_hosts(hosts);
        ClusterService::new(
            store,
            driver,
            ClusterPolicy::default(),
            Arc::new(Notify::new()),
        )
    }

    fn req() -> CreateClusterRequest {
        CreateClusterRequest::default()
    }

    fn who() -> Principal {
        Principal::token("t-ci", "ci", Role::Admin, None)
    }

    #[tokio::test]
    async fn clusters_go_to_the_least_loaded_host_with_room() {
        let service = mk_service(vec![
            mk_host("a", "eu", 4, true),
            mk_host("b", "us", 2, true),
        ])
        .await;
        let mut placed = vec![];
        for _ in 0..6 {
            placed.push(service.create(&who(), req(), None).await.unwrap().0.host);
        }
        assert_eq!(placed.iter().filter(|h| *h == "a").count(), 4, "{placed:?}");
        assert_eq!(placed.iter().filter(|h| *h == "b").count(), 2, "{placed:?}");
        let err = service.create(&who(), req(), None).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Unavailable,
            "full hosts answer 503: {err}"
        );
        assert!(
            err.to_string().contains("a 4/4") && err.to_string().contains("b 2/2"),
            "{err}"
        );
        let hosts = service.hosts().await.unwrap();
        assert_eq!(hosts.iter().map(|h| h.clusters).sum::<u32>(), 6);
    }

    #[tokio::test]
    async fn a_selector_or_a_name_picks_the_host_and_unknown_ones_are_422() {
        let service = mk_service(vec![
            mk_host("a", "eu", 4, true),
            mk_host("b", "us", 4, true),
        ])
        .await;
        let by_label = CreateClusterRequest {
            host_selector: Some([("region".to_string(), "us".to_string())].into()),
            ..req()
        };
        assert_eq!(
            service.create(&who(), by_label, None).await.unwrap().0.host,
            "b"
        );
        let by_name = CreateClusterRequest {
            host: Some("a".into()),
            ..req()
        };
        assert_eq!(
            service.create(&who(), by_name, None).await.unwrap().0.host,
            "a"
        );
        let unknown = CreateClusterRequest {
            host: Some("mars".into()),
            ..req()
        };
        let err = service.create(&who(), unknown, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(err.to_string().contains("hosts: a, b"), "{err}");
        let nomatch = CreateClusterRequest {
            host_selector: Some([("region".to_string(), "ap".to_string())].into()),
            ..req()
        };
        assert_eq!(
            service
                .create(&who(), nomatch, None)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Invalid
        );
    }

    #[tokio::test]
    async fn unreachable_hosts_are_skipped_and_none_reachable_is_503() {
        let service = mk_service(vec![
            mk_host("a", "eu", 4, false),
            mk_host("b", "us", 4, true),
        ])
        .await;
        assert_eq!(
            service.create(&who(), req(), None).await.unwrap().0.host,
            "b"
        );
        let pinned = CreateClusterRequest {
            host: Some("a".into()),
            ..req()
        };
        let err = service.create(&who(), pinned, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.to_string().contains("unreachable: a"), "{err}");
        assert!(
            !err.to_string().contains("connection refused"),
            "the cause stays out of the 503: {err}"
        );
    }

    #[tokio::test]
    async fn creates_do_not_wait_on_a_slow_host_probe_once_the_hosts_are_known() {
        // Arrange: probing the hosts takes a second; the view is known and already stale.
        let store = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
        let driver = Arc::new(FakeDriver::default());
        driver.set_hosts(vec![mk_host("a", "eu", 100, true)]);
        let service = ClusterService::new(
            store,
            driver.clone(),
            ClusterPolicy::default(),
            Arc::new(Notify::new()),
        )
        .with_host_view_max_age(std::time::Duration::from_millis(1));
        service.hosts().await.unwrap();
        driver.set_hosts_delay(std::time::Duration::from_secs(1));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;

        // Act: four creates at once.
        let started = std::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let service = service.clone();
            tasks.spawn(async move { service.create(&who(), req(), None).await.is_ok() });
        }
        let created = tasks.join_all().await;
        let took = started.elapsed();

        // Assert: none waited on the probe (before: one second each, one after the other),
        // and the stale view is refreshed once in the background.
        assert_eq!(created, vec![true; 4]);
        assert!(
            took < std::time::Duration::from_millis(500),
            "took {took:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        assert_eq!(
            driver.hosts_calls(),
            2,
            "one refresh, not one probe per create"
        );
    }

    #[tokio::test]
    async fn concurrent_creates_never_overcommit_a_host() {
        let service = mk_service(vec![mk_host("a", "eu", 3, true)]).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let service = service.clone();
            tasks.spawn(async move { service.create(&who(), req(), None).await.is_ok() });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            ok += usize::from(r.unwrap());
        }
        assert_eq!(ok, 3, "exactly the host's capacity is granted");
    }
}

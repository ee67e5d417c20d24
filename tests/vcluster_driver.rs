//! The vcluster driver against real binaries: the real `vclusterctl` and helm install the real
//! chart into a tier-B test bed (etcd, kube-apiserver, controller-manager, scheduler, kwok).
//!
//! The happy path (`real_host.rs`) runs on a tier-C host: the control plane is a real container
//! and the real syncer writes `vc-<id>`. The failure paths run on tier B, where no container
//! runs: kwok marks the control-plane pod Running and Ready, and a test that needs the secret
//! "plays the syncer" by writing it with the admin kubeconfig of a separate tier-A bed, whose
//! address is the host's `server_template`. Everything else (namespace, quota, limit range,
//! network policy, CLI, helm, chart, readiness checks, kubeconfig, delete) is the real thing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// NB: a file of its own beside this one (not `tests/host_values.rs`, which cargo would build
// as a test binary of its own); it shares this file's helpers.
#[path = "vcluster_driver/host_values.rs"]
mod host_values;
// The happy path with a real vCluster on a tier-C host (no played syncer).
#[path = "vcluster_driver/real_host.rs"]
mod real_host;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use vcm::controlplane::{KubeBins, free_port};
use vcm::domain::{Cluster, ClusterId, Phase, Timestamp, Ttl};
use vcm::driver::vcluster::{ChartSource, HostConfig, VclusterConfig, VclusterDriver};
use vcm::driver::{Driver, DriverError, Ensured};
use vcm::testing::TestBed;

const HOST: &str = "bed";
/// The chart's Deployment is made, scheduled and marked Ready by kwok within this.
const POD_READY_TIMEOUT: Duration = Duration::from_secs(90);

// === helpers ===

/// `vclusterctl`, helm and the chart from the binaries directory (`make k8s-bins`).
fn mk_config() -> VclusterConfig {
    let config = VclusterConfig::from_bins(&KubeBins::locate()).unwrap_or_else(|e| panic!("{e}"));
    let ChartSource::LocalDir(chart) = &config.chart else {
        unreachable!("from_bins uses the chart beside the CLI")
    };
    assert!(
        chart.join("Chart.yaml").is_file(),
        "{} is missing; build it with `make k8s-bins`",
        chart.display()
    );
    VclusterConfig {
        cli_timeout: Duration::from_secs(120),
        ready_timeout: Duration::from_secs(600),
        orphan_grace: Duration::ZERO,
        ..config
    }
}

fn mk_host(bed: &TestBed, server_template: &str) -> HostConfig {
    HostConfig {
        server_template: server_template.to_owned(),
        ..HostConfig::new(HOST, Some(bed.kubeconfig_path()))
    }
}

fn mk_cluster() -> Cluster {
    let mut c = vcm::store::conformance::mk_cluster("pr-42-web");
    c.phase = Phase::Provisioning;
    c.kubernetes_version = "1.36".into();
    c.host = HOST.into();
    c.ttl = Ttl::from_secs(3600);
    c.expires_at = c.created_at + c.ttl.as_span();
    c
}

fn ns_of(c: &Cluster) -> String {
    format!("vcm-{}", c.id)
}

async fn namespace_exists(bed: &TestBed, name: &str) -> bool {
    let nss: Api<Namespace> = Api::all(bed.client());
    nss.get_opt(name).await.unwrap().is_some()
}

/// An executable shell script standing in for `vclusterctl`.
fn mk_fake_cli(dir: &std::path::Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("fake-vclusterctl");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Forward 127.0.0.1:`port` to `target` (plain TCP, so TLS is end to end): the host "comes
/// back" at the address its kubeconfig names.
async fn mk_tcp_proxy(port: u16, target: std::net::SocketAddr) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

fn expect_transient(res: Result<impl std::fmt::Debug, DriverError>) -> String {
    match res {
        Err(DriverError::Transient(m)) => {
            eprintln!("transient: {m}");
            m
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
}

fn expect_permanent(res: Result<impl std::fmt::Debug, DriverError>) -> String {
    match res {
        Err(DriverError::Permanent(m)) => {
            eprintln!("permanent: {m}");
            m
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

// === tests ===

#[tokio::test]
async fn a_missing_cli_is_refused_at_start_and_fails_ensure_permanently_naming_the_build() {
    // Arrange
    let host = TestBed::tier_b().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = VclusterConfig {
        cli: dir.path().join("no-such-vclusterctl"),
        ..mk_config()
    };
    let vanishing = VclusterConfig {
        cli: mk_fake_cli(dir.path(), "exit 0"),
        ..mk_config()
    };
    let cluster = mk_cluster();

    // Act
    let refused = VclusterDriver::new(vec![mk_host(&host, "https://x")], missing).await;
    let driver = VclusterDriver::new(vec![mk_host(&host, "https://x")], vanishing.clone())
        .await
        .unwrap();
    std::fs::remove_file(&vanishing.cli).unwrap();
    let ensured = driver.ensure(&cluster).await;

    // Assert
    let msg = format!("{:#}", refused.expect_err("no CLI, no driver"));
    assert!(msg.contains("make k8s-bins"), "{msg}");
    let msg = expect_permanent(ensured);
    assert!(msg.contains("make k8s-bins"), "{msg}");

    // Act: delete still removes what was made, without the CLI.
    driver.delete(&cluster.id).await.unwrap();

    // Assert
    assert!(!namespace_exists(&host, &ns_of(&cluster)).await);
}

#[tokio::test]
async fn a_failing_cli_is_permanent_with_the_cli_own_message() {
    // Arrange: a "chart" directory that is not a chart.
    let host = TestBed::tier_b().await;
    let not_a_chart = tempfile::tempdir().unwrap();
    let config = VclusterConfig {
        chart: ChartSource::LocalDir(not_a_chart.path().to_path_buf()),
        ..mk_config()
    };
    let driver = VclusterDriver::new(vec![mk_host(&host, "https://x")], config)
        .await
        .unwrap();
    let cluster = mk_cluster();

    // Act
    let msg = expect_permanent(driver.ensure(&cluster).await);

    // Assert: the CLI's (helm's) own words reach the message.
    assert!(msg.contains("vcluster create"), "{msg}");
    assert!(msg.contains("Chart.yaml"), "{msg}");

    // Act
    driver.delete(&cluster.id).await.unwrap();

    // Assert
    assert!(!namespace_exists(&host, &ns_of(&cluster)).await);
}

#[tokio::test]
async fn a_hanging_cli_is_killed_at_its_timeout_with_its_children_and_reported_transient() {
    // Arrange: `create` hangs in a child process; `delete` succeeds at once.
    let host = TestBed::tier_b().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("3600.{}{}", std::process::id(), free_port().unwrap());
    let body = format!("case \"$1\" in create) sleep {marker} ;; *) exit 0 ;; esac");
    let config = VclusterConfig {
        cli: mk_fake_cli(dir.path(), &body),
        cli_timeout: Duration::from_secs(2),
        ..mk_config()
    };
    let driver = VclusterDriver::new(vec![mk_host(&host, "https://x")], config)
        .await
        .unwrap();
    let cluster = mk_cluster();

    // Act
    let started = Instant::now();
    let msg = expect_transient(driver.ensure(&cluster).await);

    // Assert
    assert!(msg.contains("did not finish within 2s"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let left = vcm::controlplane::find_processes(&marker);
    assert!(left.is_empty(), "sleep survived the timeout: {left:?}");

    // Act
    driver.delete(&cluster.id).await.unwrap();

    // Assert
    assert!(!namespace_exists(&host, &ns_of(&cluster)).await);
}

#[tokio::test]
async fn an_unreachable_host_is_reported_transient_and_works_once_it_is_back() {
    // Arrange: a kubeconfig naming a loopback port nobody listens on yet.
    let host = TestBed::tier_b().await;
    let port = free_port().unwrap();
    let mut kubeconfig = host.kubeconfig();
    let real = kubeconfig
        .server
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    kubeconfig.server = format!("https://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.kubeconfig");
    kubeconfig.write(&path).unwrap();
    let config = HostConfig {
        server_template: "https://x".into(),
        ..HostConfig::new(HOST, Some(path))
    };
    let driver = VclusterDriver::new(vec![config], mk_config())
        .await
        .unwrap();
    let cluster = mk_cluster();

    // Act
    let hosts = driver.hosts().await;
    let ensured = driver.ensure(&cluster).await;
    let deleted = driver.delete(&cluster.id).await;
    let listed = driver.list_managed().await;

    // Assert
    assert!(!hosts[0].reachable, "{hosts:?}");
    assert!(
        hosts[0].message.contains("did not answer"),
        "{}",
        hosts[0].message
    );
    let msg = expect_transient(ensured);
    assert!(msg.contains("unreachable"), "{msg}");
    expect_transient(deleted);
    expect_transient(listed);

    // Act: the host comes back at the same address.
    let proxy = mk_tcp_proxy(port, real).await;
    let hosts = driver.hosts().await;
    let ensured = driver.ensure(&cluster).await.unwrap();

    // Assert
    assert!(hosts[0].reachable, "{hosts:?}");
    assert!(matches!(ensured, Ensured::InProgress { .. }), "{ensured:?}");
    assert!(namespace_exists(&host, &ns_of(&cluster)).await);
    driver.delete(&cluster.id).await.unwrap();
    assert!(!namespace_exists(&host, &ns_of(&cluster)).await);
    proxy.abort();
}

#[tokio::test]
async fn list_managed_reports_only_this_installations_vcm_namespaces_older_than_the_grace() {
    // Arrange: namespaces of this installation ("aaaa"), of another one sharing the host
    // ("bbbb"), and look-alikes: no managed-by label, a name that is not `vcm-<its id>`, an
    // ill-formed id, vcm's own namespace labelled like a cluster, and a plain namespace.
    let host = TestBed::tier_a().await;
    let nss: Api<Namespace> = Api::all(host.client());
    let (mine, theirs, renamed) = (
        ClusterId::generate(),
        ClusterId::generate(),
        ClusterId::generate(),
    );
    let labelled = |id: &str, installation: &str| {
        serde_json::json!({
            "app.kubernetes.io/managed-by": "vcm", "vcm.dev/cluster-id": id,
            "vcm.dev/installation": installation,
        })
    };
    for (name, labels) in [
        (format!("vcm-{mine}"), labelled(mine.as_str(), "aaaa")),
        (format!("vcm-{theirs}"), labelled(theirs.as_str(), "bbbb")),
        ("payments".to_owned(), labelled(renamed.as_str(), "aaaa")),
        ("vcm-c-bad-id".to_owned(), labelled("c-Bad_Id", "aaaa")),
        ("vcm-system".to_owned(), labelled("system", "aaaa")),
        (
            "vcm-c-unlabelled".to_owned(),
            serde_json::json!({"vcm.dev/cluster-id": "c-unlabelled"}),
        ),
        ("plain".to_owned(), serde_json::json!({})),
    ] {
        let ns = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": labels}
        }))
        .unwrap();
        nss.create(&PostParams::default(), &ns).await.unwrap();
    }
    let driver = |grace, installation: &str| {
        let config = VclusterConfig {
            orphan_grace: grace,
            installation: Some(installation.to_owned()),
            ..mk_config()
        };
        VclusterDriver::new(vec![mk_host(&host, "https://x")], config)
    };

    // Act
    let no_grace = driver(Duration::ZERO, "aaaa")
        .await
        .unwrap()
        .list_managed()
        .await;
    let other = driver(Duration::ZERO, "bbbb")
        .await
        .unwrap()
        .list_managed()
        .await;
    let long_grace = driver(Duration::from_secs(3600), "aaaa")
        .await
        .unwrap()
        .list_managed()
        .await;

    // Assert
    assert_eq!(no_grace.unwrap(), vec![mine]);
    assert_eq!(
        other.unwrap(),
        vec![theirs],
        "installations leave each other alone"
    );
    assert_eq!(long_grace.unwrap(), Vec::<ClusterId>::new());
}

#[tokio::test]
async fn an_unknown_host_size_or_kubernetes_version_fails_permanently_without_side_effects() {
    // Arrange
    let host = TestBed::tier_a().await;
    let driver = VclusterDriver::new(vec![mk_host(&host, "https://x")], mk_config())
        .await
        .unwrap();
    let cases = [
        (
            Cluster {
                host: "nowhere".into(),
                ..mk_cluster()
            },
            "unknown host",
        ),
        (
            Cluster {
                size: "huge".into(),
                ..mk_cluster()
            },
            "unknown size",
        ),
        (
            Cluster {
                kubernetes_version: "1.29".into(),
                ..mk_cluster()
            },
            "Kubernetes 1.29 is not offered",
        ),
    ];

    for (cluster, expected) in cases {
        // Act
        let msg = expect_permanent(driver.ensure(&cluster).await);

        // Assert
        assert!(msg.contains(expected), "{msg}");
        assert!(
            !namespace_exists(&host, &ns_of(&cluster)).await,
            "{expected}: namespace made"
        );
    }
}

#[tokio::test]
async fn a_cluster_not_ready_within_the_timeout_fails_permanently_saying_what_was_missing() {
    // Arrange: tier A has no controllers, so the chart's Deployment never makes a pod.
    let host = TestBed::tier_a().await;
    let driver = VclusterDriver::new(vec![mk_host(&host, "https://x")], mk_config())
        .await
        .unwrap();
    let cluster = Cluster {
        created_at: Timestamp::now() - jiff::SignedDuration::from_secs(3600),
        ..mk_cluster()
    };

    // Act
    let msg = expect_permanent(driver.ensure(&cluster).await);

    // Assert: the chart was installed, and the message names the timeout and the pod.
    assert!(msg.starts_with("not ready after 600s"), "{msg}");
    assert!(msg.contains("control-plane pod"), "{msg}");
    Api::<Deployment>::namespaced(host.client(), &ns_of(&cluster))
        .get(cluster.id.as_str())
        .await
        .expect("the chart was installed before the deadline was judged");
}

#[tokio::test]
async fn a_ready_cluster_whose_namespace_is_gone_is_reported_lost() {
    // Arrange
    let host = TestBed::tier_a().await;
    let driver = VclusterDriver::new(vec![mk_host(&host, "https://x")], mk_config())
        .await
        .unwrap();
    let cluster = Cluster {
        phase: Phase::Ready,
        ready_at: Some(Timestamp::now()),
        ..mk_cluster()
    };

    // Act
    let err = driver
        .ensure(&cluster)
        .await
        .expect_err("a lost cluster is an error");

    // Assert: reported as lost (the reconciler fails the cluster with reason `lost`), not
    // silently re-created.
    assert!(matches!(err, DriverError::Lost(_)), "{err:?}");
    assert!(err.to_string().starts_with("lost: namespace"), "{err}");
    assert!(!namespace_exists(&host, &ns_of(&cluster)).await);
}

#[tokio::test]
async fn a_ready_cluster_whose_release_is_gone_is_reported_lost_not_reinstalled() {
    // Arrange: the namespace is there, but no Helm release is (someone uninstalled it).
    let host = TestBed::tier_a().await;
    let driver = VclusterDriver::new(vec![mk_host(&host, "https://x")], mk_config())
        .await
        .unwrap();
    let cluster = Cluster {
        phase: Phase::Ready,
        ready_at: Some(Timestamp::now()),
        ..mk_cluster()
    };
    let nss: Api<Namespace> = Api::all(host.client());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns_of(&cluster)}})).unwrap();
    nss.create(&Default::default(), &ns).await.unwrap();

    // Act
    let err = driver
        .ensure(&cluster)
        .await
        .expect_err("a Ready cluster without its control plane is an error");

    // Assert: lost, naming the release; nothing was installed in its place.
    assert!(matches!(err, DriverError::Lost(_)), "{err:?}");
    assert!(err.to_string().contains("release"), "{err}");
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(host.client(), &ns_of(&cluster));
    assert!(
        quotas
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "no install step ran"
    );
}

#[tokio::test]
async fn a_ready_cluster_whose_control_plane_workload_is_gone_is_reported_lost() {
    // Arrange: namespace and deployed Helm release are there, but the chart's StatefulSet
    // (or Deployment) was deleted, so no control-plane pod will ever come back.
    let host = TestBed::tier_a().await;
    let driver = VclusterDriver::new(vec![mk_host(&host, "https://x")], mk_config())
        .await
        .unwrap();
    let cluster = Cluster {
        phase: Phase::Ready,
        ready_at: Some(Timestamp::now()),
        ..mk_cluster()
    };
    let ns_name = ns_of(&cluster);
    let nss: Api<Namespace> = Api::all(host.client());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns_name}})).unwrap();
    nss.create(&Default::default(), &ns).await.unwrap();
    let release: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": format!("sh.helm.release.v1.{}.v1", cluster.id),
            "labels": {"owner": "helm", "name": cluster.id.as_str(), "status": "deployed"},
        },
        "type": "helm.sh/release.v1",
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(host.client(), &ns_name)
        .create(&Default::default(), &release)
        .await
        .unwrap();

    // Act
    let err = driver
        .ensure(&cluster)
        .await
        .expect_err("a Ready cluster without its control plane is an error");

    // Assert
    assert!(matches!(err, DriverError::Lost(_)), "{err:?}");
    assert!(err.to_string().contains("control plane"), "{err}");
}

#[tokio::test]
async fn the_cli_gets_explicit_arguments_a_private_home_the_pinned_helm_and_no_inherited_env() {
    // Arrange: a fake CLI that records how it was run, and the values file it was given.
    let host = TestBed::tier_a().await;
    let dir = tempfile::tempdir().unwrap();
    let (record, values) = (dir.path().join("record"), dir.path().join("values.yaml"));
    let body = format!(
        r#"prev=; for a in "$@"; do [ "$prev" = "-f" ] && cp "$a" {values}; prev=$a; done
{{ echo "ARGS $*"; echo "PWD $(pwd)"; echo "MODE $(stat -c %a "$HOME")"; env; }} > {record}"#,
        values = values.display(),
        record = record.display()
    );
    let config = VclusterConfig {
        cli: mk_fake_cli(dir.path(), &body),
        ..mk_config()
    };
    let helm_dir = config.helm_dir.display().to_string();
    let driver = VclusterDriver::new(vec![mk_host(&host, "https://{id}.example.com")], config)
        .await
        .unwrap();
    let cluster = mk_cluster();
    let id = cluster.id.to_string();

    // Act
    let ensured = driver.ensure(&cluster).await.unwrap();

    // Assert: arguments, working directory, HOME, PATH and environment.
    assert!(matches!(ensured, Ensured::InProgress { .. }), "{ensured:?}");
    let record = std::fs::read_to_string(&record).unwrap();
    let line = |prefix: &str| {
        record
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {record}"))
            .to_owned()
    };
    let expected = format!(
        "create {id} --namespace=vcm-{id} --driver=helm --connect=false --upgrade --add=false \
         --background-proxy=false --expose-local=false --local-chart-dir="
    );
    assert!(line("ARGS ").starts_with(&expected), "{}", line("ARGS "));
    let home = line("HOME=");
    assert_eq!(line("PWD "), home, "runs in its private HOME");
    assert_eq!(line("MODE "), "700");
    assert!(
        !std::path::Path::new(&home).exists(),
        "HOME removed afterwards"
    );
    assert!(line("PATH=").starts_with(&helm_dir), "{}", line("PATH="));
    assert_eq!(line("VCLUSTER_SKIP_VERSION_CHECK="), "true");
    assert_eq!(
        line("KUBECONFIG="),
        host.kubeconfig_path().display().to_string()
    );
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    assert!(
        !record.contains("CARGO_MANIFEST_DIR"),
        "vcm's environment leaked"
    );

    // Assert: the values name the version, the SANs and the handed-out server.
    let values: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&values).unwrap()).unwrap();
    let server = format!("https://{id}.example.com");
    assert_eq!(values["exportKubeConfig"]["server"], server.as_str());
    assert_eq!(
        values["controlPlane"]["distro"]["k8s"]["version"],
        "v1.36.0"
    );
    assert_eq!(
        values["controlPlane"]["proxy"]["extraSANs"],
        serde_json::json!([
            format!("{id}.vcm-{id}.svc"),
            format!("{id}.vcm-{id}.svc.cluster.local"),
            format!("{id}.example.com"),
        ])
    );
}

#[tokio::test]
async fn host_usage_reads_the_namespace_pods_requests_and_quotas_and_says_when_metrics_are_missing()
{
    // Arrange: a host (tier A: no scheduler, no metrics-server) with a cluster's namespace
    // holding two pods (one finished) and a ResourceQuota.
    let host = TestBed::tier_a().await;
    let cluster = mk_cluster();
    let ns = ns_of(&cluster);
    let pp = PostParams::default();
    let nss: Api<Namespace> = Api::all(host.client());
    let namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    nss.create(&pp, &namespace).await.unwrap();
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(host.client(), &ns);
    let container = |name: &str, cpu: &str, memory: &str| {
        serde_json::json!({"name": name, "image": "busybox",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}})
    };
    for (name, containers) in [
        (
            "api",
            vec![
                container("api", "250m", "128Mi"),
                container("sidecar", "0.1", "64Mi"),
            ],
        ),
        ("done", vec![container("job", "1", "1Gi")]),
    ] {
        let pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name}, "spec": {"containers": containers}
        }))
        .unwrap();
        pods.create(&pp, &pod).await.unwrap();
    }
    let mut done = pods.get_status("done").await.unwrap();
    done.status = Some(serde_json::from_value(serde_json::json!({"phase": "Succeeded"})).unwrap());
    pods.replace_status("done", &pp, &done).await.unwrap();
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(host.client(), &ns);
    let quota = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "vcm-quota"},
        "spec": {"hard": {"pods": "10", "requests.cpu": "2"}}
    }))
    .unwrap();
    quotas.create(&pp, &quota).await.unwrap();
    let mut quota = quotas.get_status("vcm-quota").await.unwrap();
    quota.status = Some(
        serde_json::from_value(serde_json::json!({
            "hard": {"pods": "10", "requests.cpu": "2"},
            "used": {"pods": "1", "requests.cpu": "350m"}
        }))
        .unwrap(),
    );
    quotas
        .replace_status("vcm-quota", &pp, &quota)
        .await
        .unwrap();
    let driver = VclusterDriver::new(vec![mk_host(&host, "https://x")], mk_config())
        .await
        .unwrap();

    // Act
    let usage = driver.host_usage(&cluster).await.unwrap();

    // Assert
    let got = usage
        .namespace
        .as_ref()
        .expect("a vCluster's use is its namespace");
    assert_eq!(got.name, ns);
    assert_eq!(got.pods, 2);
    assert_eq!(
        got.cpu_requests_millicores, 350,
        "the finished pod holds nothing: {got:?}"
    );
    assert_eq!(got.memory_requests_bytes, 192 * 1024 * 1024, "{got:?}");
    let mut quota: Vec<(String, String, String)> = got
        .quotas
        .iter()
        .map(|q| (q.resource.clone(), q.used.clone(), q.hard.clone()))
        .collect();
    quota.sort();
    assert_eq!(
        quota,
        vec![
            ("pods".into(), "1".into(), "10".into()),
            ("requests.cpu".into(), "350m".into(), "2".into()),
        ]
    );
    assert_eq!(got.cpu_used_millicores, None);
    assert!(
        usage.notes.iter().any(|n| n.contains("metrics API")),
        "a host without metrics-server says so: {:?}",
        usage.notes
    );
    assert!(usage.processes.is_empty());
}

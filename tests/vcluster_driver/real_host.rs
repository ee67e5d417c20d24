//! The driver's happy path with the real thing: a tier-C host whose node runs the vCluster
//! control plane as a container (locally built images through the host's `values_file`), the
//! real syncer writing `vc-<id>`, and vcm reaching the API through the node port.

#[path = "../support/vcm_server.rs"]
mod vcm_server;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, Pod, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::ListParams;
use vcm::domain::{Cluster, Phase, Timestamp};
use vcm::driver::vcluster::{HostConfig, VclusterConfig, VclusterDriver};
use vcm::driver::{Driver, Ensured};
use vcm::testing::{TestBed, eventually};

use super::{mk_cluster, mk_config, mk_host, namespace_exists, ns_of};

/// The real control plane starts (init container, kine, API server, syncer) within this.
const REAL_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_is_installed_by_the_real_cli_becomes_ready_serves_ci_and_is_deleted() {
    // Arrange: a host with a real node; vcm reaches each cluster through its node port.
    let host = TestBed::tier_c().await;
    let node = host.node().unwrap().addresses().node;
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("host-values.yaml");
    std::fs::write(&values, vcm_server::HOST_VALUES).unwrap();
    let config = VclusterConfig {
        installation: Some("0123456789abcdef".into()),
        kubernetes_versions: [("1.36".to_owned(), "v1.36.3".to_owned())].into(),
        ..mk_config()
    };
    let host_config = HostConfig {
        values_file: Some(values),
        ..mk_host(&host, &format!("https://{node}:{{node_port}}"))
    };
    let driver = VclusterDriver::new(vec![host_config], config)
        .await
        .unwrap();
    let cluster = mk_cluster();
    let (id, ns) = (cluster.id.to_string(), ns_of(&cluster));

    // Act: the first step installs the chart with the real CLI.
    let started = std::time::Instant::now();
    let first = driver.ensure(&cluster).await.unwrap();
    eprintln!("vclusterctl create + first checks: {:?}", started.elapsed());

    // Assert: not ready yet; the chart's objects and vcm's isolation objects exist.
    assert!(matches!(first, Ensured::InProgress { .. }), "{first:?}");
    // NB: without a volume (size small) the chart runs the control plane as a Deployment.
    let deploy: Deployment = Api::namespaced(host.client(), &ns).get(&id).await.unwrap();
    let init = deploy
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .init_containers
        .unwrap();
    assert!(
        init.iter()
            .any(|c| c.image.as_deref() == Some("vcm.local/vcluster-k8s:v1.36.3")),
        "the host's registry with vcm's version tag: {init:?}"
    );
    let service: Service = Api::namespaced(host.client(), &ns).get(&id).await.unwrap();
    assert_eq!(service.spec.unwrap().type_.as_deref(), Some("NodePort"));
    let quota: ResourceQuota = Api::namespaced(host.client(), &ns)
        .get("vcm-quota")
        .await
        .unwrap();
    assert_eq!(quota.spec.unwrap().hard.unwrap()["count/pods"].0, "30");
    Api::<LimitRange>::namespaced(host.client(), &ns)
        .get("vcm-limits")
        .await
        .expect("the limit range");
    let policies: Api<NetworkPolicy> = Api::namespaced(host.client(), &ns);
    let isolation = policies.get("vcm-isolation").await.unwrap();
    assert_eq!(
        isolation.spec.unwrap().policy_types.unwrap(),
        ["Ingress", "Egress"]
    );
    policies
        .get("vcm-api")
        .await
        .expect("a node-port host opens the control plane's API port");
    let labels = Api::<Namespace>::all(host.client())
        .get(&ns)
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "vcm");
    assert_eq!(labels["vcm.dev/cluster-id"], id);
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
    assert_eq!(labels["vcm.dev/installation"], "0123456789abcdef");
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = Api::namespaced(host.client(), &ns)
        .get("vcm-namespace")
        .await
        .expect("vcm's own Secrets access, in this namespace only");
    assert_eq!(binding.role_ref.name, "vcm-namespace");

    // Act: the real control plane starts and the real syncer writes its secret.
    let ready = eventually("Ready", REAL_READY_TIMEOUT, || async {
        match driver.ensure(&cluster).await? {
            ready @ Ensured::Ready { .. } => Ok(Some(ready)),
            Ensured::InProgress { message } => {
                eprintln!("{:>5.1}s {message}", started.elapsed().as_secs_f64());
                Ok(None)
            }
            other => anyhow::bail!("unexpected: {other:?}"),
        }
    })
    .await
    .unwrap();
    eprintln!("Ready after {:?}", started.elapsed());

    // Assert: ready at the node port; one real control-plane pod; CI credentials work.
    let Ensured::Ready { endpoint } = ready else {
        unreachable!()
    };
    assert!(
        endpoint.starts_with(&format!("https://{node}:3")),
        "{endpoint}"
    );
    let pods: Api<Pod> = Api::namespaced(host.client(), &ns);
    let selector = format!("app=vcluster,release={id}");
    let control = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    assert_eq!(control.items.len(), 1);
    assert!(
        control.items[0]
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs.iter().all(|c| c.ready)),
        "{:?}",
        control.items[0].status
    );
    // The health check of the Ready cluster finds its release and control plane in place.
    let healthy = driver
        .ensure(&Cluster {
            phase: Phase::Ready,
            ready_at: Some(Timestamp::now()),
            ..cluster.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        healthy,
        Ensured::Ready {
            endpoint: endpoint.clone()
        }
    );
    let admin = driver.admin_kubeconfig(&cluster).await.unwrap();
    assert_eq!(admin.server, endpoint);
    let ci = vcm::driver::mint_ci_kubeconfig(&admin, "pr-42-web", 600)
        .await
        .unwrap();
    assert!(matches!(
        ci.user,
        vcm::controlplane::KubeconfigUser::Token(_)
    ));
    let path = dir.path().join("ci.kubeconfig");
    ci.write(&path).unwrap();
    let out = tokio::process::Command::new("kubectl")
        .arg(format!("--kubeconfig={}", path.display()))
        .args(["get", "ns", "-o", "name"])
        .output()
        .await
        .expect("kubectl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("namespace/default"),
        "kubectl: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(driver.list_managed().await.unwrap().contains(&cluster.id));

    // Act: delete (retried while the namespace terminates, as the reconciler does), twice.
    let started = std::time::Instant::now();
    eventually("deleted", REAL_READY_TIMEOUT, || async {
        driver.delete(&cluster.id).await?;
        Ok(Some(()))
    })
    .await
    .unwrap();
    eprintln!("delete took {:?}", started.elapsed());
    driver.delete(&cluster.id).await.unwrap();

    // Assert: nothing left.
    assert!(!namespace_exists(&host, &ns).await, "namespace left behind");
    assert!(!driver.list_managed().await.unwrap().contains(&cluster.id));
}

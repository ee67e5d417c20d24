//! Host-level settings against the real CLI and chart: a `server_template` with `{node_port}`
//! (the chart's Service becomes a NodePort and vcm hands out its allocated port) and a host
//! `values_file` (merged under vcm's own values).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota, Secret, Service};
use kube::Api;
use kube::api::PostParams;
use vcm::driver::vcluster::{HostConfig, VclusterDriver};
use vcm::driver::{Driver, Ensured};
use vcm::testing::{TestBed, eventually};

use super::{
    POD_READY_TIMEOUT, expect_transient, mk_cluster, mk_config, mk_host, mk_tcp_proxy, ns_of,
};

/// A host values file in `dir`.
fn mk_values_file(dir: &std::path::Path, yaml: &str) -> std::path::PathBuf {
    let path = dir.join("host-values.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Play the syncer: secret `vc-<id>` with `kubeconfig`.
async fn mk_syncer_secret(host: &TestBed, ns: &str, id: &str, kubeconfig: &str) {
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("vc-{id}")},
        "stringData": {"config": kubeconfig},
    }))
    .unwrap();
    Api::<Secret>::namespaced(host.client(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// The node port of the Service's port named `https`.
fn https_node_port(service: &Service) -> u16 {
    let ports = service.spec.as_ref().unwrap().ports.as_ref().unwrap();
    let https = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("https"))
        .unwrap_or_else(|| panic!("no port named https: {ports:?}"));
    u16::try_from(https.node_port.expect("a node port is allocated")).unwrap()
}

#[tokio::test]
async fn a_node_port_template_makes_the_service_a_node_port_and_hands_out_its_allocated_port() {
    // Arrange: a host values file that tries to keep the Service a ClusterIP.
    let (host, standin) = tokio::join!(TestBed::tier_b(), TestBed::tier_a());
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig {
        values_file: Some(mk_values_file(
            dir.path(),
            "controlPlane:\n  service:\n    spec:\n      type: ClusterIP\n",
        )),
        ..mk_host(&host, "https://127.0.0.1:{node_port}")
    };
    let driver = VclusterDriver::new(vec![config], mk_config())
        .await
        .unwrap();
    let cluster = mk_cluster();
    let (id, ns) = (cluster.id.to_string(), ns_of(&cluster));

    // Act: the first step installs the chart.
    let first = driver.ensure(&cluster).await.unwrap();

    // Assert: a NodePort Service (vcm's value wins over the host's), admitted under the small
    // size's quota, which otherwise allows no node port.
    assert!(matches!(first, Ensured::InProgress { .. }), "{first:?}");
    let service: Service = Api::namespaced(host.client(), &ns).get(&id).await.unwrap();
    assert_eq!(
        service.spec.as_ref().unwrap().type_.as_deref(),
        Some("NodePort")
    );
    let port = https_node_port(&service);
    let server = format!("https://127.0.0.1:{port}");
    let quota: ResourceQuota = Api::namespaced(host.client(), &ns)
        .get("vcm-quota")
        .await
        .unwrap();
    assert_eq!(
        quota.spec.unwrap().hard.unwrap()["services.nodeports"].0,
        "2"
    );

    // Act: kwok makes the pod Ready; play the syncer with the stand-in's credentials.
    eventually("pod Ready, secret awaited", POD_READY_TIMEOUT, || async {
        match driver.ensure(&cluster).await? {
            Ensured::InProgress { message } if message.contains("secret") => Ok(Some(message)),
            other => anyhow::bail!("still: {other:?}"),
        }
    })
    .await
    .unwrap();
    mk_syncer_secret(&host, &ns, &id, &standin.kubeconfig().to_yaml().unwrap()).await;
    let probed = driver.ensure(&cluster).await.unwrap();
    let admin = driver.admin_kubeconfig(&cluster).await.unwrap();

    // Assert: vcm probes and hands out exactly the allocated node port (nothing listens there
    // yet: no kube-proxy in the bed).
    let Ensured::InProgress { message } = probed else {
        panic!("ready with nothing at the node port: {probed:?}")
    };
    assert!(
        message.contains(&format!("waiting for the API at {server} to answer")),
        "{message}"
    );
    assert_eq!(admin.server, server);

    // Act: stand in for kube-proxy: the node port forwards to the stand-in API server.
    let target = standin
        .kubeconfig()
        .server
        .trim_start_matches("https://")
        .parse()
        .unwrap();
    let proxy = mk_tcp_proxy(port, target).await;
    let ready = driver.ensure(&cluster).await.unwrap();

    // Assert
    assert_eq!(ready, Ensured::Ready { endpoint: server });
    proxy.abort();
    driver.delete(&cluster.id).await.unwrap();
}

#[tokio::test]
async fn a_node_port_cluster_without_its_service_has_no_kubeconfig_yet_and_says_why() {
    // Arrange: the namespace and the syncer's secret, but no chart Service.
    let (host, standin) = tokio::join!(TestBed::tier_a(), TestBed::tier_a());
    let driver = VclusterDriver::new(
        vec![mk_host(&host, "https://127.0.0.1:{node_port}")],
        mk_config(),
    )
    .await
    .unwrap();
    let cluster = mk_cluster();
    let (id, ns) = (cluster.id.to_string(), ns_of(&cluster));
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    Api::<Namespace>::all(host.client())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    mk_syncer_secret(&host, &ns, &id, &standin.kubeconfig().to_yaml().unwrap()).await;

    // Act
    let msg = expect_transient(driver.admin_kubeconfig(&cluster).await);

    // Assert
    assert!(msg.contains("not known yet"), "{msg}");
    assert!(msg.contains(&format!("Service {id}")), "{msg}");
}

#[tokio::test]
async fn a_host_values_file_reaches_the_release_and_vcm_keeps_its_own_keys() {
    // Arrange: an annotation of the host's, and resources that conflict with the size's.
    let host = TestBed::tier_b().await;
    let dir = tempfile::tempdir().unwrap();
    let values = mk_values_file(
        dir.path(),
        "controlPlane:\n  service:\n    annotations:\n      example.com/from: host-values\n  \
         statefulSet:\n    resources:\n      requests: {cpu: \"3\", memory: 5Gi}\n  \
         ingress:\n    enabled: true\n\
         telemetry:\n  enabled: true\n",
    );
    let missing = HostConfig {
        values_file: Some(dir.path().join("missing.yaml")),
        ..mk_host(&host, "https://x")
    };
    let config = HostConfig {
        values_file: Some(values),
        ..mk_host(&host, "https://{id}.vc.example.com")
    };

    // Act
    let refused = VclusterDriver::new(vec![missing], mk_config()).await;
    let driver = VclusterDriver::new(vec![config], mk_config())
        .await
        .unwrap();
    let cluster = mk_cluster();
    let (id, ns) = (cluster.id.to_string(), ns_of(&cluster));
    let first = driver.ensure(&cluster).await.unwrap();

    // Assert: a missing file stops the driver, naming file and host.
    let msg = format!("{:#}", refused.expect_err("a missing values file"));
    assert!(
        msg.contains("missing.yaml") && msg.contains("host bed"),
        "{msg}"
    );
    // The host's annotation is on the real Service; the size's resources stayed vcm's.
    assert!(matches!(first, Ensured::InProgress { .. }), "{first:?}");
    let service: Service = Api::namespaced(host.client(), &ns).get(&id).await.unwrap();
    let annotations = service.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("example.com/from").map(String::as_str),
        Some("host-values")
    );
    assert_eq!(
        service.spec.unwrap().type_.as_deref(),
        Some("ClusterIP"),
        "no node port without {{node_port}}"
    );
    let deploy: Deployment = Api::namespaced(host.client(), &ns).get(&id).await.unwrap();
    let containers = deploy.spec.unwrap().template.spec.unwrap().containers;
    let requests = containers[0]
        .resources
        .as_ref()
        .and_then(|r| r.requests.clone())
        .unwrap();
    assert_eq!(
        (requests["cpu"].0.as_str(), requests["memory"].0.as_str()),
        ("200m", "256Mi"),
        "the small size's requests, not the host's"
    );
    // The host enabled the chart's Ingress; vcm made its host the cluster's own name.
    let ingress: k8s_openapi::api::networking::v1::Ingress =
        Api::namespaced(host.client(), &ns).get(&id).await.unwrap();
    let rules = ingress.spec.unwrap().rules.unwrap();
    assert_eq!(
        rules[0].host.as_deref(),
        Some(format!("{id}.vc.example.com").as_str())
    );
    // The values the chart ran with (it keeps them in secret `vc-config-<id>`).
    let applied: Secret = Api::namespaced(host.client(), &ns)
        .get(&format!("vc-config-{id}"))
        .await
        .unwrap();
    let applied: serde_json::Value =
        serde_yaml_ng::from_slice(&applied.data.unwrap()["config.yaml"].0).unwrap();
    assert_eq!(
        applied["telemetry"]["enabled"], false,
        "vcm's telemetry off wins"
    );
    assert_eq!(
        applied["controlPlane"]["service"]["annotations"]["example.com/from"],
        "host-values"
    );
    driver.delete(&cluster.id).await.unwrap();
}

//! etcd answers only TLS clients with a certificate of its CA; fsync is the default; an older
//! vcm's plain-HTTP etcd and API server converge to TLS on their ports.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use vcm::controlplane::{
    ApiServer, ApiServerOptions, Etcd, EtcdOptions, KubeBins, Pki, find_processes,
};
use vcm::domain::Phase;
use vcm::driver::local::LocalDriver;
use vcm::driver::{Driver, Ensured};

use super::{etcd_argv, flag, mk_cluster, mk_guard, mode};

#[tokio::test]
async fn etcd_answers_only_tls_clients_with_a_certificate_of_its_ca_and_keeps_keys_private() {
    // Arrange
    let guard = mk_guard(|d| d);
    let driver = &guard.driver;
    let c = mk_cluster();
    driver.ensure(&c).await.unwrap();
    let (_, argv) = etcd_argv(driver.root());
    let url = flag(&argv, "--listen-client-urls=").unwrap().to_owned();
    let port = url.rsplit(':').next().unwrap();
    let range = serde_json::json!({"key": "L3ZjbS8=", "range_end": "L3ZjbTA=", "count_only": true});
    let pki = driver.etcd_pki();
    let etcd_ca = reqwest::Certificate::from_pem(pki.ca_pem().unwrap().as_bytes()).unwrap();

    // Act: plain HTTP; TLS without a client certificate; TLS with a cluster's admin
    // certificate (another CA); TLS with vcm's certificate.
    let plain = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v3/kv/range"))
        .json(&range)
        .send()
        .await;
    let anonymous = reqwest::Client::builder()
        .tls_certs_only([etcd_ca.clone()])
        .build()
        .unwrap()
        .post(format!("https://127.0.0.1:{port}/v3/kv/range"))
        .json(&range)
        .send()
        .await;
    let admin = Pki::existing(&driver.root().join("clusters").join(c.id.as_str()))
        .unwrap()
        .admin()
        .unwrap();
    let cluster_admin = reqwest::Client::builder()
        .tls_certs_only([etcd_ca])
        .identity(
            reqwest::Identity::from_pem(format!("{}{}", admin.cert_pem, admin.key_pem).as_bytes())
                .unwrap(),
        )
        .build()
        .unwrap()
        .post(format!("https://127.0.0.1:{port}/v3/kv/range"))
        .json(&range)
        .send()
        .await;
    let vcm: serde_json::Value = pki
        .http_client(Duration::from_secs(5))
        .unwrap()
        .post(format!("https://127.0.0.1:{port}/v3/kv/range"))
        .json(&range)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();

    // Assert
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let refused = |r: &Result<reqwest::Response, reqwest::Error>| match r {
        Ok(resp) => !resp.status().is_success(),
        Err(_) => true,
    };
    assert!(refused(&plain), "plain HTTP answered: {plain:?}");
    assert!(
        refused(&anonymous),
        "no client cert answered: {anonymous:?}"
    );
    assert!(
        refused(&cluster_admin),
        "a cluster CA's certificate answered: {cluster_admin:?}"
    );
    let count: u64 = vcm["count"].as_str().unwrap().parse().unwrap();
    assert!(count > 0, "vcm's certificate reads the keys: {vcm}");
    assert!(argv.contains(&"--client-cert-auth=true".to_owned()));
    assert!(
        flag(&argv, "--listen-peer-urls=https://").is_some(),
        "{argv:?}"
    );
    assert!(
        !argv.iter().any(|a| a.starts_with("--unsafe-no-fsync")),
        "fsync is on by default: {argv:?}"
    );
    assert_eq!(mode(pki.dir()), 0o700);
    assert_eq!(
        mode(&driver.root().join("etcd").join("etcd")),
        0o700,
        "etcd's data"
    );
    for key in [pki.ca_key(), pki.server_key(), pki.vcm_key()] {
        assert_eq!(mode(&key), 0o600, "{}", key.display());
    }
    let cluster_key = driver
        .root()
        .join("clusters")
        .join(c.id.as_str())
        .join("etcd-client.key");
    assert_eq!(mode(&cluster_key), 0o600);
}

#[tokio::test]
async fn unsafe_no_fsync_is_opt_in_and_a_changed_setting_restarts_etcd_on_its_port() {
    // Arrange: a cluster on an etcd without fsync.
    let guard = mk_guard(|d| d.with_etcd_unsafe_no_fsync(true));
    let c = mk_cluster();
    let Ensured::Ready { endpoint } = guard.driver.ensure(&c).await.unwrap() else {
        panic!("not ready")
    };
    let (before_pid, before) = etcd_argv(guard.driver.root());

    // Act: vcm restarts with fsync on (the default) over the same directory.
    let again = LocalDriver::new(guard.driver.root(), KubeBins::locate()).unwrap();
    let mut ready = c.clone();
    ready.phase = Phase::Ready;
    let ensured = again.ensure(&ready).await.unwrap();
    let (after_pid, after) = etcd_argv(guard.driver.root());

    // Assert
    assert!(before.contains(&"--unsafe-no-fsync=true".to_owned()));
    assert!(!after.iter().any(|a| a.starts_with("--unsafe-no-fsync")));
    assert_ne!(before_pid, after_pid, "etcd was restarted");
    assert_eq!(
        flag(&before, "--listen-client-urls="),
        flag(&after, "--listen-client-urls="),
        "on the same port"
    );
    assert!(
        matches!(&ensured, Ensured::Ready { endpoint: e } if *e == endpoint),
        "the API server keeps serving on its port: {ensured:?}"
    );
    assert!(again.etcd_key_count(&c.id).await.unwrap() > 0);
}

#[tokio::test]
async fn an_older_vcms_plain_http_etcd_and_api_server_converge_to_tls_on_their_ports() {
    // Arrange: what an older vcm left running: plain-HTTP etcd without fsync, and an API
    // server using it, with a ConfigMap in it.
    let guard = mk_guard(|d| d);
    let root = guard.driver.root().to_path_buf();
    let bins = KubeBins::locate();
    let mut c = mk_cluster();
    c.phase = Phase::Ready;
    let plain = EtcdOptions {
        unsafe_no_fsync: true,
        ..EtcdOptions::default()
    };
    let etcd = Etcd::start_with(&bins, &root.join("etcd"), &plain)
        .await
        .unwrap();
    let etcd_port = etcd.client_port();
    std::fs::write(
        root.join("etcd").join("ports"),
        format!("{etcd_port} {}", etcd.peer_port()),
    )
    .unwrap();
    let mut opts = ApiServerOptions::new(root.join("clusters").join(c.id.as_str()), etcd.url());
    opts.etcd_prefix = format!("/vcm/{}/registry", c.id);
    opts.service_account_admission = true;
    let apiserver = ApiServer::start(&bins, &opts).await.unwrap();
    let port = apiserver.port();
    std::fs::write(opts.dir.join("port"), port.to_string()).unwrap();
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "from-older-vcm"}}))
            .unwrap();
    Api::<ConfigMap>::namespaced(apiserver.client().await.unwrap(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    apiserver.detach();
    etcd.detach();

    // Act: this vcm's driver takes over.
    let ensured = guard.driver.ensure(&c).await.unwrap();

    // Assert: etcd on TLS on its port, the API server restarted on its port with TLS flags,
    // the data kept.
    let (_, argv) = etcd_argv(&root);
    assert_eq!(
        flag(&argv, "--listen-client-urls="),
        Some(format!("https://127.0.0.1:{etcd_port}").as_str())
    );
    assert!(argv.contains(&"--client-cert-auth=true".to_owned()));
    let Ensured::Restarted { endpoint, message } = &ensured else {
        panic!("the API server was restarted: {ensured:?}")
    };
    assert!(
        message.contains("without TLS"),
        "the event says why: {message}"
    );
    assert_eq!(*endpoint, format!("https://127.0.0.1:{port}"));
    let marker = format!("--cert-dir={}", opts.dir.display());
    let (_, api_argv) = find_processes(&marker).pop().unwrap();
    assert!(api_argv.iter().any(|a| a.starts_with("--etcd-certfile=")));
    let admin = guard.driver.admin_kubeconfig(&c).await.unwrap();
    Api::<ConfigMap>::namespaced(admin.client().await.unwrap(), "default")
        .get("from-older-vcm")
        .await
        .expect("the data survived");
}

//! etcd answers only TLS clients with a certificate of its CA; fsync is the default; an older
//! vcm's plain-HTTP etcd and API server converge to TLS on their ports.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use vcm::controlplane::{
    ApiServer, ApiServerOptions, Etcd, EtcdOptions, KubeBins, Pki, find_processes,
};
use vcm::domain::Phase;
use vcm::driver::local::LocalDriver;
use vcm::driver::{Driver, Ensured};

use super::{Guard, etcd_argv, flag, mk_cluster, mk_guard, mode};

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

/// Create-to-Ready of local clusters with and without fsync, one live cluster at a time.
/// `cargo test --test local_etcd -- --ignored --nocapture` (figures in docs/PERFORMANCE.md).
#[tokio::test]
#[ignore = "a measurement, not a test: several minutes"]
async fn create_to_ready_with_and_without_fsync() {
    const ROUNDS: usize = 5;
    let fsync = mk_guard(|d| d);
    let no_fsync = mk_guard(|d| d.with_etcd_unsafe_no_fsync(true));
    // Start both etcds first: their start is not part of a create.
    for g in [&fsync, &no_fsync] {
        let c = mk_cluster();
        g.driver.ensure(&c).await.unwrap();
        g.driver.delete(&c.id).await.unwrap();
    }
    let before = [etcd_disk(&fsync).await, etcd_disk(&no_fsync).await];
    let mut times: [Vec<f64>; 2] = [vec![], vec![]];
    for _ in 0..ROUNDS {
        for (i, g) in [&fsync, &no_fsync].into_iter().enumerate() {
            let c = mk_cluster();
            let started = Instant::now();
            let ensured = g.driver.ensure(&c).await.unwrap();
            times[i].push(started.elapsed().as_secs_f64());
            assert!(matches!(ensured, Ensured::Ready { .. }));
            g.driver.delete(&c.id).await.unwrap();
        }
    }
    let after = [etcd_disk(&fsync).await, etcd_disk(&no_fsync).await];
    for (i, (name, t)) in ["fsync", "unsafe-no-fsync"]
        .iter()
        .zip(&mut times)
        .enumerate()
    {
        let per_create = |k: usize| (after[i][k] - before[i][k]) / ROUNDS as f64;
        eprintln!(
            "{name}: per create+delete: {:.0} WAL fsyncs taking {:.3}s, {:.0} backend commits \
             taking {:.3}s",
            per_create(0),
            per_create(1),
            per_create(2),
            per_create(3)
        );
        t.sort_by(f64::total_cmp);
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        eprintln!(
            "{name}: mean {mean:.2}s, median {:.2}s, min {:.2}s, max {:.2}s ({:?})",
            t[t.len() / 2],
            t[0],
            t[t.len() - 1],
            t.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>()
        );
    }
}

/// etcd's WAL fsync count and seconds, and backend commit count and seconds, from its
/// `/metrics` (read with vcm's client certificate).
async fn etcd_disk(g: &Guard) -> [f64; 4] {
    let (_, argv) = etcd_argv(g.driver.root());
    let url = flag(&argv, "--listen-client-urls=").unwrap();
    let text = g
        .driver
        .etcd_pki()
        .http_client(Duration::from_secs(5))
        .unwrap()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metric = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    [
        metric("etcd_disk_wal_fsync_duration_seconds_count"),
        metric("etcd_disk_wal_fsync_duration_seconds_sum"),
        metric("etcd_disk_backend_commit_duration_seconds_count"),
        metric("etcd_disk_backend_commit_duration_seconds_sum"),
    ]
}

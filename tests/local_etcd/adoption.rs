//! Only vcm's own processes are adopted or signalled: one that carries a cluster's or etcd's
//! command line but runs another binary is left alone and named where it is in the way; one
//! whose binary was replaced on disk is restarted from the current file.

use std::time::{Duration, Instant};

use vcm::controlplane::{KubeBins, find_processes, is_alive};
use vcm::domain::Phase;
use vcm::driver::local::LocalDriver;
use vcm::driver::{Driver, Ensured};

use super::{Guard, mk_cluster, mk_guard, mk_impostor};

#[tokio::test]
async fn a_process_with_a_clusters_command_line_but_another_binary_is_neither_adopted_nor_killed() {
    // Arrange: a Ready cluster, and a shell whose command line carries its API server's marker.
    let mut guard = mk_guard(|d| d);
    let mut c = mk_cluster();
    let Ensured::Ready { endpoint } = guard.driver.ensure(&c).await.unwrap() else {
        panic!("not ready")
    };
    c.phase = Phase::Ready;
    let marker = format!(
        "--cert-dir={}",
        guard
            .driver
            .root()
            .join("clusters")
            .join(c.id.as_str())
            .display()
    );
    let impostor = mk_impostor(&mut guard, &[&marker, "--secure-port=1"]);

    // Act: a restarted vcm adopts, tears everything down, then the cluster's own API server
    // dies while the port is taken.
    let again = LocalDriver::new(guard.driver.root(), KubeBins::locate()).unwrap();
    let adopted = again.ensure(&c).await.unwrap();
    let killed = again.kill_all_processes();
    let alive_after_kill_all = is_alive(impostor);
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    // NB: a SIGKILLed leader shows as a zombie while its other threads still close its sockets;
    // the port is free only once they are done.
    let deadline = Instant::now() + Duration::from_secs(10);
    let squatter = loop {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => break l,
            Err(e) if Instant::now() > deadline => panic!("port {port} stays taken: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let blocked = again.ensure(&c).await.unwrap_err().to_string();
    drop(squatter);

    // Assert
    assert!(
        matches!(&adopted, Ensured::Ready { endpoint: e } if *e == endpoint),
        "the real API server was adopted: {adopted:?}"
    );
    assert!(killed >= 5, "etcd, API server and 3 components: {killed}");
    assert!(alive_after_kill_all, "the impostor was signalled");
    assert!(
        blocked.contains(&format!("pid {impostor}")) && blocked.contains("neither adopts nor"),
        "the error names the impostor: {blocked}"
    );
    assert!(is_alive(impostor));
}

#[tokio::test]
async fn a_process_with_etcds_data_directory_but_another_binary_is_named_and_not_signalled() {
    // Arrange
    let mut guard = mk_guard(|d| d);
    let data = format!(
        "--data-dir={}",
        guard.driver.root().join("etcd").join("etcd").display()
    );
    let impostor = mk_impostor(&mut guard, &[&data]);

    // Act
    let err = guard.driver.ensure(&mk_cluster()).await.unwrap_err();

    // Assert
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("pid {impostor}")) && msg.contains("stop them"),
        "the error names the process and what to do: {msg}"
    );
    assert!(is_alive(impostor));
    assert!(
        guard.driver.process_ids().is_empty(),
        "no etcd of vcm's runs"
    );
}

#[tokio::test]
async fn an_api_server_whose_binary_was_replaced_on_disk_is_restarted_on_its_port() {
    // Arrange: binaries as hard links in a directory of the test's (same inodes, no copy), a
    // Ready cluster started from them, then kube-apiserver replaced on disk (an upgrade).
    let bins_dir = tempfile::tempdir().unwrap();
    let real = KubeBins::locate();
    for name in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    ] {
        std::fs::hard_link(real.get(name).unwrap(), bins_dir.path().join(name)).unwrap();
    }
    std::os::unix::fs::symlink(
        real.dir_of("kwok").unwrap().join("kwok-stages"),
        bins_dir.path().join("kwok-stages"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bins = KubeBins::in_dir(bins_dir.path());
    let guard = Guard {
        driver: LocalDriver::new(dir.path().join("local"), bins.clone()).unwrap(),
        extra: vec![],
        _dir: dir,
    };
    let mut c = mk_cluster();
    let Ensured::Ready { endpoint } = guard.driver.ensure(&c).await.unwrap() else {
        panic!("not ready")
    };
    c.phase = Phase::Ready;
    // NB: unlink and link again rather than rename over it: a rename between two links of
    // one file does nothing.
    let apiserver = bins_dir.path().join("kube-apiserver");
    std::fs::remove_file(&apiserver).unwrap();
    std::fs::hard_link(real.get("kube-apiserver").unwrap(), &apiserver).unwrap();

    // Act
    let ensured = guard.driver.ensure(&c).await.unwrap();

    // Assert: restarted from the current file, on the same port.
    let Ensured::Restarted {
        endpoint: again,
        message,
    } = &ensured
    else {
        panic!("restarted: {ensured:?}")
    };
    assert_eq!(*again, endpoint);
    assert!(message.contains("replaced on disk"), "{message}");
    let marker = format!(
        "--cert-dir={}",
        guard
            .driver
            .root()
            .join("clusters")
            .join(c.id.as_str())
            .display()
    );
    let (pid, _) = find_processes(&marker).pop().unwrap();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, apiserver, "runs the current file");
}

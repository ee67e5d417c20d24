//! The local driver's shared etcd is locked down and durable: TLS with client certificates from
//! its own CA, private key files, fsync unless configured otherwise (`tls`); only vcm's own
//! processes adopted or signalled (`adoption`); an older vcm's plain-HTTP etcd converging to
//! TLS on its ports (`tls`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adoption;
mod tls;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use vcm::controlplane::{KubeBins, find_processes, kill_group};
use vcm::domain::{Cluster, ClusterName, Phase};
use vcm::driver::local::LocalDriver;

/// Kills every process of vcm's under the driver's root, and the extra process groups a test
/// started, when the test ends, however it ends.
struct Guard {
    driver: LocalDriver,
    extra: Vec<u32>,
    _dir: tempfile::TempDir,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.driver.kill_all_processes();
        self.extra.iter().for_each(|pid| kill_group(*pid));
    }
}

fn mk_guard(configure: impl FnOnce(LocalDriver) -> LocalDriver) -> Guard {
    let dir = tempfile::tempdir().unwrap();
    let driver = LocalDriver::new(dir.path().join("local"), KubeBins::locate())
        .unwrap_or_else(|e| panic!("{e:#}"));
    Guard {
        driver: configure(driver),
        extra: vec![],
        _dir: dir,
    }
}

fn mk_cluster() -> Cluster {
    let mut c = vcm::store::conformance::mk_cluster("local");
    c.name = ClusterName::from_id(&c.id);
    c.phase = Phase::Provisioning;
    c
}

/// A shell (not a binary of vcm's) whose command line carries `args`, in its own process
/// group, killed with the guard.
fn mk_impostor(guard: &mut Guard, args: &[&str]) -> u32 {
    let mut cmd = std::process::Command::new("/bin/sh");
    // NB: `; :` keeps the shell from exec-ing sleep, so the shell itself keeps the arguments.
    cmd.args(["-c", "sleep 600; :", "sh"]).args(args);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let pid = cmd.spawn().unwrap().id();
    guard.extra.push(pid);
    // NB: spawn returns once exec has begun, a moment before the kernel shows the new command
    // line in /proc.
    for _ in 0..500 {
        if find_processes(args[0]).iter().any(|(p, _)| *p == pid) {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the impostor {pid} never showed its command line");
}

/// The command line of the driver's etcd.
fn etcd_argv(root: &Path) -> (u32, Vec<String>) {
    let flag = format!("--data-dir={}", root.join("etcd").join("etcd").display());
    let mut found = find_processes(&flag);
    assert_eq!(found.len(), 1, "one etcd: {found:?}");
    found.pop().unwrap()
}

fn flag<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    argv.iter().find_map(|a| a.strip_prefix(name))
}

fn mode(path: &Path) -> u32 {
    path.metadata().unwrap().permissions().mode() & 0o777
}

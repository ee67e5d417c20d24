//! Finding and removing what a tier-C bed leaves on the machine: processes in its cgroups and
//! mount namespace, and its cgroups in every hierarchy.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CGROUP_PREFIX;

/// Tear down what a bed left when its test process died without teardown: `dir` holds the
/// `node-state` file its [`Node::create`] wrote.
pub fn clean_stale(dir: &Path) {
    let Ok(state) = std::fs::read_to_string(dir.join("node-state")) else {
        return;
    };
    let get = |key: &str| {
        state
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    let (cgroup, mntns) = (get("cgroup"), get("mntns"));
    if !cgroup.starts_with(CGROUP_PREFIX) {
        return;
    }
    // NB: the namespace recorded may be gone and its number reused by another: only processes
    // that name this bed's directory (containerd and its shims do) are taken from it.
    let dir = dir.display().to_string();
    let mentions_dir = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&dir))
    };
    kill_all(&cgroup, &mntns, 0, &mentions_dir);
    remove_cgroups(&cgroup);
}

/// SIGKILL every process in `cgroup`, and those in mount namespace `mntns` that `ours` accepts
/// (except `keep`), until none is left (at most 10 s).
pub(super) fn kill_all(cgroup: &str, mntns: &str, keep: u32, ours: &dyn Fn(u32) -> bool) {
    let t = Instant::now();
    loop {
        let mut pids = cgroup_pids(cgroup);
        if !mntns.is_empty() {
            pids.extend(mntns_pids(mntns).into_iter().filter(|p| ours(*p)));
        }
        pids.retain(|p| *p != keep && *p != std::process::id());
        if pids.is_empty() || t.elapsed() > Duration::from_secs(10) {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The mounted cgroup hierarchies (v1 controllers, `systemd`, `unified`).
pub(super) fn hierarchies() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return vec![];
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Every process in `cgroup` or below, in any hierarchy.
pub(super) fn cgroup_pids(cgroup: &str) -> Vec<u32> {
    let mut pids = vec![];
    for h in hierarchies() {
        let mut stack = vec![h.join(cgroup)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
        }
    }
    pids
}

/// Every process whose mount namespace is `mntns` (`mnt:[…]`).
pub(super) fn mntns_pids(mntns: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
                .is_ok_and(|l| l.display().to_string() == mntns)
        })
        .collect()
}

/// Remove `cgroup` and everything below it in every hierarchy (children first).
pub(super) fn remove_cgroups(cgroup: &str) {
    for h in hierarchies() {
        let root = h.join(cgroup);
        let mut dirs = vec![];
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
                dirs.push(dir);
            }
        }
        for dir in dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Names of the bed cgroups that exist now (for leak checks).
pub fn existing_cgroups() -> Vec<String> {
    let mut out = vec![];
    for h in hierarchies() {
        if let Ok(entries) = std::fs::read_dir(&h) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(CGROUP_PREFIX) {
                    out.push(format!("{}/{name}", h.display()));
                }
            }
        }
    }
    out
}

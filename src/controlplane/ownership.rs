//! Which processes found by their command line are vcm's to adopt or signal.
//!
//! NB: a command line is no proof: anyone can start a process whose arguments name vcm's
//! directories (`grep`, `tail -f`, a script, another user's program). Only a process that runs
//! the binary vcm runs for that role, under vcm's own user, is vcm's.

use std::path::PathBuf;

use super::process::find_processes;

/// Whether vcm may adopt or signal a process it found by its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// vcm's binary for the role (same canonical path), run by vcm's user: adopt it.
    Ours,
    /// vcm's user, and vcm's binary replaced on disk after the process started (the kernel
    /// shows `<path> (deleted)`) or the same program at another path (an upgrade's new cache
    /// directory). vcm started it, so vcm may stop it; it does not adopt it, because what runs
    /// is not the binary vcm would start, and it is restarted from the current one.
    Replaced,
    /// Not vcm's (another binary, another user, or unreadable): neither adopted nor signalled.
    /// The reason, for logs and errors.
    Foreign(String),
}

/// A process found by its command line, with what vcm may do with it.
#[derive(Debug, Clone)]
pub struct FoundProcess {
    /// The process id.
    pub pid: u32,
    /// Its command line.
    pub argv: Vec<String>,
    /// Whether it is vcm's.
    pub ownership: Ownership,
}

// === impl FoundProcess ===

impl FoundProcess {
    /// Ours or replaced: vcm started it and may signal it.
    pub fn is_vcms(&self) -> bool {
        !matches!(self.ownership, Ownership::Foreign(_))
    }
}

/// Like [`find_processes`], each process sorted by [`Ownership`] against the binaries vcm runs
/// (`expected`, any of them; canonicalized here). Foreign processes are logged once per call.
pub fn find_owned_processes(needle: &str, expected: &[PathBuf]) -> Vec<FoundProcess> {
    // NB: a binary deleted since (not replaced) no longer canonicalizes; its path as given
    // still recognises the processes that run it as replaced, so they can be stopped.
    let expected: Vec<PathBuf> = expected
        .iter()
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .collect();
    find_processes(needle)
        .into_iter()
        .map(|(pid, argv)| {
            let ownership = ownership(pid, &expected);
            if let Ownership::Foreign(why) = &ownership {
                tracing::warn!(
                    pid,
                    argv = %argv.join(" "),
                    "a process carries vcm's command line but is not vcm's ({why}); \
                     it is neither adopted nor signalled"
                );
            }
            FoundProcess {
                pid,
                argv,
                ownership,
            }
        })
        .collect()
}

/// Whether `pid` runs one of the `expected` binaries (canonical paths) with vcm's effective uid
/// as its real uid.
pub fn ownership(pid: u32, expected: &[PathBuf]) -> Ownership {
    let euid = nix::unistd::geteuid().as_raw();
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .split_whitespace()
                .next()?
                .parse::<u32>()
                .ok()
        });
    match uid {
        Some(uid) if uid == euid => {}
        Some(uid) => {
            return Ownership::Foreign(format!("runs as uid {uid}, vcm as uid {euid}"));
        }
        None => return Ownership::Foreign("its owner is unreadable".into()),
    }
    let exe = match std::fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(exe) => exe,
        Err(e) => return Ownership::Foreign(format!("its binary is unreadable: {e}")),
    };
    if expected.contains(&exe) {
        return Ownership::Ours;
    }
    let shown = exe.display().to_string();
    let deleted = shown.strip_suffix(" (deleted)");
    let name = |p: &std::path::Path| p.file_name().map(|n| n.to_os_string());
    // NB: the same program at another path, under vcm's user: another build of vcm's binary
    // (an upgrade moved the binaries to a new versioned cache directory). Treated like a
    // replaced file, so an upgraded vcm stops and restarts what the old one started instead of
    // leaving it running forever; `tail -f` of a log or a shell never has that name.
    let same_program = name(std::path::Path::new(deleted.unwrap_or(&shown)))
        .is_some_and(|n| expected.iter().any(|e| name(e).as_ref() == Some(&n)));
    match deleted {
        Some(path) if expected.iter().any(|e| e.as_os_str() == path) => Ownership::Replaced,
        _ if same_program => Ownership::Replaced,
        _ => Ownership::Foreign(format!(
            "runs {shown}, not {}",
            expected
                .iter()
                .map(|e| e.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_process_is_ours_only_if_it_runs_the_expected_binary_and_replaced_when_that_file_went() {
        // Arrange: a copy of sleep, started from a path of ours, then removed from disk.
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("sleep");
        std::fs::copy("/bin/sleep", &bin).expect("copy sleep");
        // NB: a fork in another test thread may hold the copy's write handle for a moment
        // (ETXTBSY); that passes.
        let mut child = (0..50)
            .find_map(
                |_| match std::process::Command::new(&bin).arg("30").spawn() {
                    Ok(child) => Some(child),
                    Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                        std::thread::sleep(Duration::from_millis(20));
                        None
                    }
                    Err(e) => panic!("spawn: {e}"),
                },
            )
            .expect("the copy became executable");
        let pid = child.id();
        let ours = vec![bin.canonicalize().expect("canonical")];
        let other = vec![PathBuf::from("/bin/sh").canonicalize().expect("sh")];
        let moved = vec![dir.path().join("new-cache").join("sleep")];

        // Act
        let as_ours = ownership(pid, &ours);
        let as_other = ownership(pid, &other);
        let as_moved = ownership(pid, &moved);
        std::fs::remove_file(&bin).expect("remove");
        let replaced = ownership(pid, &ours);
        let _ = child.kill();
        let _ = child.wait();

        // Assert
        assert_eq!(as_ours, Ownership::Ours);
        assert!(
            matches!(&as_other, Ownership::Foreign(why) if why.contains("sleep")),
            "another binary is foreign, and the reason names it: {as_other:?}"
        );
        assert_eq!(replaced, Ownership::Replaced);
        assert_eq!(
            as_moved,
            Ownership::Replaced,
            "the same program from an older cache directory is vcm's to stop and restart"
        );
    }
}

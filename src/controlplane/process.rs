//! A child process in its own process group, killed with its whole group.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How to run a [`Supervised`] process.
#[derive(Debug, Clone, Default)]
pub struct SupervisedOptions {
    /// Where stdout and stderr go (appended).
    pub log_path: PathBuf,
    /// Have the kernel SIGKILL the process when the thread that spawned it dies (through
    /// `setpriv --pdeathsig KILL`). Test beds set this, so a test killed by Ctrl-C or SIGKILL
    /// leaves nothing running; the local driver does not, so its control planes survive a vcm
    /// restart and are re-adopted.
    pub die_with_parent: bool,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// A running child process that leads its own process group. Dropping it kills the group.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

// === impl Supervised ===

impl Supervised {
    /// Start `program` with `args`; stdin is closed and output goes to the log file.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        opts: &SupervisedOptions,
    ) -> anyhow::Result<Self> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&opts.log_path)
            .with_context(|| format!("opening log {}", opts.log_path.display()))?;
        let mut cmd = if opts.die_with_parent {
            let mut c = Command::new("setpriv");
            c.args(["--pdeathsig", "KILL", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log handle")?)
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        tracing::debug!(name, pid = child.id(), "started process");
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log_path: opts.log_path.clone(),
        })
    }

    /// The process id (also its process-group id).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process is still running; reaps it if it exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The exit status, if it has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The last `lines` lines of the process's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// SIGTERM the group, wait up to `grace`, then SIGKILL it; reap the child.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        terminate_group(child.id(), grace);
        let _ = child.wait();
    }

    /// Let the process run on after this handle is dropped (the local driver's control planes
    /// outlive a vcm restart). A thread waits for it, so it is reaped (no zombie) whenever it
    /// exits or is killed by group. Returns its pid.
    pub fn detach(mut self) -> u32 {
        let pid = self.pid();
        if let Some(mut child) = self.child.take() {
            let spawned = std::thread::Builder::new()
                .name(format!("reap-{pid}"))
                .spawn(move || {
                    let _ = child.wait();
                });
            if let Err(e) = spawned {
                tracing::warn!(pid, error = %e, "no reaper thread; the process becomes a zombie when it exits");
            }
        }
        pid
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id());
            let _ = child.wait();
        }
    }
}

/// SIGKILL process group `pgid` (a process started by [`Supervised`] leads its own group).
/// A group that no longer exists is fine.
pub fn kill_group(pgid: u32) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
    }
}

/// The one way vcm stops a process group: SIGTERM, up to `grace` for the leader to exit, then
/// SIGKILL for the whole group, and a short wait until the leader is gone. Blocking: async
/// callers run it with `spawn_blocking`.
pub fn terminate_group(pgid: u32, grace: Duration) {
    /// How long a SIGKILLed leader may take to disappear (the kernel reaps it at once; this
    /// only covers scheduling).
    const AFTER_KILL: Duration = Duration::from_secs(2);
    if pgid <= 1 {
        return;
    }
    let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGTERM);
    let wait_gone = |limit: Duration| {
        let deadline = Instant::now() + limit;
        while is_alive(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_gone(grace);
    kill_group(pgid);
    wait_gone(AFTER_KILL);
}

/// Running (non-zombie) processes whose command line contains `needle` as one argument's
/// substring, as `(pid, argv)`. Used to find control planes after a restart, whatever pid files
/// say.
pub fn find_processes(needle: &str) -> Vec<(u32, Vec<String>)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut found = vec![];
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if argv.iter().any(|a| a.contains(needle)) && is_alive(pid) {
            found.push((pid, argv));
        }
    }
    found
}

/// Whether `pid` runs and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start())
                .unwrap_or("");
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

/// The last `lines` lines of a log file, or a note that it could not be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(log {} unreadable: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_a_supervised_process_kills_its_whole_group() {
        // Arrange: a shell whose child (sleep) is in the same group.
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = SupervisedOptions {
            log_path: dir.path().join("sh.log"),
            ..Default::default()
        };
        let args = vec!["-c".to_string(), "sleep 300 & echo $! ; wait".to_string()];
        let p = Supervised::spawn("sh", Path::new("/bin/sh"), &args, &opts).expect("spawn");
        let mut grandchild = None;
        for _ in 0..200 {
            if let Ok(pid) = std::fs::read_to_string(&opts.log_path)
                .unwrap_or_default()
                .trim()
                .parse::<i32>()
            {
                grandchild = Some(pid);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let grandchild = grandchild.expect("the shell printed its child's pid");

        // Act
        drop(p);

        // Assert: the grandchild is gone too (kill 0 fails with ESRCH).
        std::thread::sleep(Duration::from_millis(100));
        let alive = nix::sys::signal::kill(Pid::from_raw(grandchild), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "grandchild {grandchild} survived the group kill");
    }
}

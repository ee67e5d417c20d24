//! A long-running `kubectl` (a watch, `logs -f`, `exec -i`, `port-forward`) whose output lines
//! arrive with the time each arrived (included with `#[path]`).
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A long-running kubectl whose output lines arrive on a channel with the time each arrived.
pub struct Streaming {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    stdin: Option<ChildStdin>,
}

impl Streaming {
    pub fn start(kubeconfig: &Path, args: &[&str]) -> Self {
        let mut child = Command::new("kubectl")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl is installed");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            stdin,
        }
    }

    /// When the first line containing `needle` arrived (waiting at most `timeout`).
    pub fn line_with(&self, needle: &str, timeout: Duration) -> Instant {
        self.arrival_of(needle, timeout)
            .unwrap_or_else(|| panic!("no line with {needle:?} within {timeout:?}"))
    }

    /// Whether a line containing `needle` arrives within `timeout`.
    pub fn try_line_with(&self, needle: &str, timeout: Duration) -> bool {
        self.arrival_of(needle, timeout).is_some()
    }

    fn arrival_of(&self, needle: &str, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) if line.contains(needle) => return Some(at),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// How long after `since` the process ended (waiting at most `timeout`), if it did.
    pub fn ended_after(&mut self, since: Instant, timeout: Duration) -> Option<Duration> {
        while since.elapsed() < timeout {
            if self.child.try_wait().unwrap().is_some() {
                return Some(since.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Write `line` and a newline to its standard input.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole answer (status line, headers, body) to a plain HTTP/1.0 GET of a loopback port
/// (what a port-forward or `kubectl proxy` serves).
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(conn, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    response
}

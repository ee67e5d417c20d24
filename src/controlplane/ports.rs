//! Free loopback ports for child processes.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, OnceLock};

/// Ports already handed out by this process; never handed out twice, so parallel test beds in
/// one test binary cannot collide even before their processes bind.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Whether a child's start-up failed because another process took its port first (then a
/// retry on fresh ports is worth it).
pub fn is_port_clash(err: &anyhow::Error) -> bool {
    format!("{err:#}").contains("address already in use")
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed out
/// before. Another process may still take it before our child binds it: callers that start a
/// server on it should retry with a new port when the child fails with "address already in use".
pub fn free_port() -> std::io::Result<u16> {
    for _ in 0..64 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let mut seen = handed_out().lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other(
        "no free loopback port after 64 tries",
    ))
}

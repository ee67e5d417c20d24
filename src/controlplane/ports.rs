//! Loopback ports for child processes, tracked so this process never hands out a port one of
//! its own children uses, and given back when the child is gone.
//!
//! NB: a port is ours from the moment it is handed out until it is released, not only while a
//! child listens on it: a local cluster's kube-apiserver that died must come back on the same
//! port (its kubeconfigs and service-account issuer name it), so no other cluster may take that
//! port in the meantime. Ports are released when their [`PortLease`] drops (a child that is
//! stopped with its handle) or explicitly with [`release_port`] (the local driver, when a
//! cluster is deleted). Before, ports were never given back, and a long-running server
//! eventually found no port it had not handed out already.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// How many ports the OS may offer that we hold already before giving up.
const PICK_ATTEMPTS: usize = 64;

/// Ports this process holds (handed out and not yet released).
fn held() -> MutexGuard<'static, HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Whether a child's start-up failed because another process took its port first (then a
/// retry on fresh ports is worth it).
pub fn is_port_clash(err: &anyhow::Error) -> bool {
    format!("{err:#}").contains("address already in use")
}

/// A held port, released when dropped unless [`PortLease::keep`] hands it to a longer-lived
/// owner.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    release_on_drop: bool,
}

// === impl PortLease ===

impl PortLease {
    /// A lease on a free loopback port this process does not hold already. Another process may
    /// still take it before our child binds it: callers that start a server on it should retry
    /// with a new port when the child fails with "address already in use".
    pub fn free() -> std::io::Result<Self> {
        for _ in 0..PICK_ATTEMPTS {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                .local_addr()?
                .port();
            if held().insert(port) {
                return Ok(Self {
                    port,
                    release_on_drop: true,
                });
            }
        }
        Err(std::io::Error::other(format!(
            "no free loopback port after {PICK_ATTEMPTS} tries"
        )))
    }

    /// A handle on `port` that someone else holds and releases (the caller chose the port):
    /// dropping it releases nothing.
    pub fn borrowed(port: u16) -> Self {
        Self {
            port,
            release_on_drop: false,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Keep the port held after this handle is gone (a detached process goes on using it); its
    /// owner gives it back with [`release_port`].
    pub fn keep(mut self) -> u16 {
        self.release_on_drop = false;
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if self.release_on_drop {
            release_port(self.port);
        }
    }
}

/// A free loopback port, held until [`release_port`]. See [`PortLease::free`].
pub fn free_port() -> std::io::Result<u16> {
    PortLease::free().map(PortLease::keep)
}

/// Hold `port` (one a running child of ours already uses, found after a restart), so it is
/// never handed out to another. Holding a port twice is harmless.
pub fn hold_port(port: u16) {
    held().insert(port);
}

/// Give `port` back: its process is stopped for good.
pub fn release_port(port: u16) {
    held().remove(&port);
}

/// Whether this process holds `port`.
pub fn is_port_held(port: u16) -> bool {
    held().contains(&port)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn released_ports_are_handed_out_again_so_a_long_running_process_never_runs_out() {
        // Arrange: more creates than the kernel has ephemeral ports (28 232 on Linux).
        let creates = 40_000;

        // Act / Assert: every create gets a port as long as each is given back.
        for i in 0..creates {
            let lease =
                PortLease::free().unwrap_or_else(|e| panic!("create {i} found no port: {e}"));
            assert!(is_port_held(lease.port()));
            drop(lease);
        }
    }

    #[test]
    fn a_held_port_is_never_handed_out_until_released() {
        // Arrange
        let kept = PortLease::free().unwrap().keep();

        // Act
        let others: Vec<PortLease> = (0..200).map(|_| PortLease::free().unwrap()).collect();

        // Assert
        assert!(others.iter().all(|l| l.port() != kept));
        assert!(is_port_held(kept));
        release_port(kept);
        assert!(!is_port_held(kept));
        let borrowed = PortLease::borrowed(kept);
        hold_port(kept);
        drop(borrowed);
        assert!(is_port_held(kept), "a borrowed lease releases nothing");
        release_port(kept);
    }
}

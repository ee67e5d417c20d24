//! What the vcluster CLI printed: its tail collected, cleaned into one line for a cluster's
//! message, and classified as worth a retry or not.
//!
//! NB: the CLI is another program; its exit status says only "failed", so whether a retry can
//! help is read from its words (connection trouble, server overload), the way a person would.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt as _};

use super::DriverError;

/// Most bytes of CLI output kept (its tail) for messages and logs.
pub(super) const OUTPUT_TAIL: usize = 4096;
/// Output that means the host (or the network to it) had trouble, not the request: retrying
/// can help. Matched case-insensitively.
const TRANSIENT_MARKERS: &[&str] = &[
    "connection refused",
    "connection reset",
    "i/o timeout",
    "tls handshake timeout",
    "unable to connect",
    "the server is currently unable",
    "no route to host",
    "context deadline exceeded",
    "client rate limiter",
    "too many requests",
    "internal error occurred",
    "etcdserver: request timed out",
    "another operation (install/upgrade/rollback) is in progress",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
    "500 internal server error",
    "(503)",
    "(502)",
    "(500)",
];
/// The error for a failed CLI call, by what its output says.
pub(super) fn classify(
    verb: &str,
    host: &str,
    status: std::process::ExitStatus,
    output: &str,
) -> DriverError {
    let msg = format!(
        "vcluster {verb} on host {host} failed ({status}): {}",
        or_none(output)
    );
    let lower = output.to_lowercase();
    if TRANSIENT_MARKERS.iter().any(|m| lower.contains(m)) {
        DriverError::Transient(msg)
    } else {
        DriverError::Permanent(msg)
    }
}

pub(super) async fn collect(mut pipe: impl AsyncRead + Unpin, tail: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let Ok(mut t) = tail.lock() else { break };
        t.extend_from_slice(&buf[..n]);
        let excess = t.len().saturating_sub(OUTPUT_TAIL);
        t.drain(..excess);
    }
}

/// The collected output on one line: ANSI colour codes and the logger's `HH:MM:SS ` prefixes
/// removed, blank lines dropped, lines joined with `; ` (it ends up in a cluster's message).
pub(super) fn text_of(tail: &Mutex<Vec<u8>>) -> String {
    let bytes = tail.lock().map(|t| t.clone()).unwrap_or_default();
    one_line(&strip_ansi(&String::from_utf8_lossy(&bytes)))
}

fn one_line(text: &str) -> String {
    let is_clock = |p: &[u8]| {
        p.len() == 9
            && p[8] == b' '
            && p[2] == b':'
            && p[5] == b':'
            && [0, 1, 3, 4, 6, 7].iter().all(|&i| p[i].is_ascii_digit())
    };
    text.lines()
        .map(|l| match l.as_bytes().get(..9) {
            Some(prefix) if is_clock(prefix) => &l[9..],
            _ => l,
        })
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Skip parameters up to the final byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn or_none(output: &str) -> &str {
    if output.is_empty() { "(none)" } else { output }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    #[test]
    fn connectivity_trouble_is_transient_and_anything_else_permanent() {
        let failed = std::process::ExitStatus::from_raw(1 << 8);
        let cases = [
            ("dial tcp 127.0.0.1:1: connect: connection refused", true),
            (
                "Unable to connect to the server: net/http: TLS handshake timeout",
                true,
            ),
            (
                "Error: the server is currently unable to handle the request",
                true,
            ),
            ("fatal  Chart.yaml file is missing", false),
            (
                "merge values: error unmarshaling JSON: unknown field \"x\"",
                false,
            ),
        ];
        for (output, transient) in cases {
            let err = classify("create", "h", failed, output);
            assert_eq!(
                matches!(err, DriverError::Transient(_)),
                transient,
                "{output:?} classified as {err:?}"
            );
            assert!(
                err.to_string().contains(output),
                "message keeps the CLI's words"
            );
        }
    }

    #[test]
    fn output_becomes_one_line_without_clock_prefixes() {
        assert_eq!(
            one_line("14:58:11 info Upgrade c-1...\n14:58:11 fatal boom\n\nError: x\n"),
            "info Upgrade c-1...; fatal boom; Error: x"
        );
    }

    #[test]
    fn ansi_colour_codes_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[31mfatal\u{1b}[0m  boom"), "fatal  boom");
    }
}

//! Steady client load on a running vcm server, for tests that break something under it
//! (included with `#[path]`): threads sending creates (each accepted cluster deleted at once,
//! so control planes do not pile up), GETs of one cluster and list pages, each over a fresh
//! plain HTTP/1.0 connection with a client timeout, recording every answer.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a client waits for an answer: longer is a hang.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between one thread's requests: steady load well below the per-principal rate limit
/// (6,000 a minute) with every thread running.
const PACE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Create,
    Delete,
    Get,
    List,
}

/// One request and what came of it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub kind: Kind,
    /// When it was sent.
    pub at: Instant,
    pub took: Duration,
    /// `None`: no answer within [`CLIENT_TIMEOUT`] (or the connection failed).
    pub status: Option<u16>,
    /// The `Retry-After` header's value.
    pub retry_after: Option<String>,
    /// The error code of an error body.
    pub code: Option<String>,
    /// The cluster a create was accepted for.
    pub created: Option<String>,
}

/// A raw request on loopback: status, lower-cased header block, body.
pub fn call(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> Option<(u16, String, String)> {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(CLIENT_TIMEOUT)).ok()?;
    let body = body.unwrap_or("");
    write!(
        conn,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    conn.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, head.to_ascii_lowercase(), body.to_owned()))
}

fn send(
    port: u16,
    token: &str,
    kind: Kind,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Answer {
    let at = Instant::now();
    let got = call(port, method, path, token, body);
    let took = at.elapsed();
    let (status, head, body) = match got {
        Some((s, h, b)) => (Some(s), h, b),
        None => (None, String::new(), String::new()),
    };
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let retry_after = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .map(str::to_owned);
    let code = json["error"]["code"].as_str().map(str::to_owned);
    let created = (kind == Kind::Create && status == Some(202))
        .then(|| json["id"].as_str().map(str::to_owned))
        .flatten();
    Answer {
        kind,
        at,
        took,
        status,
        retry_after,
        code,
        created,
    }
}

/// Run `creators` create threads and `readers` threads each of GETs of `get_id` and of list
/// pages until `stop`; every answer, in no particular order. A creator deletes each cluster
/// it got accepted, retrying the delete until it is accepted or `stop` (the ids whose delete
/// was never accepted are returned too).
pub fn run(
    port: u16,
    token: &str,
    get_id: &str,
    creators: usize,
    readers: usize,
    stop: &AtomicBool,
) -> (Vec<Answer>, Vec<String>) {
    let answers = Mutex::new(Vec::new());
    let undeleted = Mutex::new(Vec::new());
    let record = |a: Answer| answers.lock().unwrap().push(a);
    std::thread::scope(|s| {
        for _ in 0..creators {
            s.spawn(|| {
                let mut pending: Vec<String> = vec![];
                while !stop.load(Ordering::SeqCst) {
                    let body = r#"{"size":"small","ttl":"1h","labels":{"load":"yes"}}"#;
                    let a = send(
                        port,
                        token,
                        Kind::Create,
                        "POST",
                        "/v1/clusters",
                        Some(body),
                    );
                    pending.extend(a.created.clone());
                    record(a);
                    let mut left = vec![];
                    for id in pending.drain(..) {
                        let path = format!("/v1/clusters/{id}");
                        let a = send(port, token, Kind::Delete, "DELETE", &path, None);
                        if a.status != Some(202) {
                            left.push(id);
                        }
                        record(a);
                    }
                    pending = left;
                    // NB: slower than the readers: most creates are refused for capacity
                    // while earlier ones are still being torn down.
                    std::thread::sleep(PACE * 5);
                }
                undeleted.lock().unwrap().extend(pending);
            });
        }
        for _ in 0..readers {
            s.spawn(|| {
                let get = format!("/v1/clusters/{get_id}");
                while !stop.load(Ordering::SeqCst) {
                    record(send(port, token, Kind::Get, "GET", &get, None));
                    std::thread::sleep(PACE);
                    let list = "/v1/clusters?limit=20";
                    record(send(port, token, Kind::List, "GET", list, None));
                    std::thread::sleep(PACE);
                }
            });
        }
    });
    (
        answers.into_inner().unwrap(),
        undeleted.into_inner().unwrap(),
    )
}

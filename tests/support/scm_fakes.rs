//! A local stand-in for GitHub's and Bitbucket's REST APIs on 127.0.0.1, speaking their
//! documented wire format for what vcm calls (included with `#[path]`):
//!
//! - GitHub `POST /repos/{owner}/{repo}/statuses/{sha}`: 201; 422 for a description over 140
//!   characters (GitHub's "description is too long (maximum is 140 characters)"); 401 for an
//!   unknown or expired token; a `User-Agent` is required.
//! - GitHub `POST /repos/{owner}/{repo}/check-runs` and `PATCH …/check-runs/{id}`: an
//!   installation token only (403 for other tokens, as only Apps may), `name` and `head_sha`
//!   required, a `conclusion` required with `status: completed` (422 otherwise).
//! - GitHub `POST /app/installations/{id}/access_tokens`: checks the App JWT (RS256 with the
//!   App's public key, `iss` the App id, at most 10 minutes) and answers 201 with a one-hour
//!   token.
//! - Bitbucket `GET /2.0/repositories/{ws}/{repo}/commit/{hash}`: the full hash of a short one.
//! - Bitbucket `POST /2.0/repositories/{ws}/{repo}/commit/{hash}/statuses/build`: 201; 400 for
//!   a key over 40 characters or an invalid url, in Bitbucket's error format.
//!
//! It records every request, can answer 500 to the next N status posts (an outage), and can
//! expire the next installation token it mints after one use.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[path = "scm_bitbucket.rs"]
mod bitbucket;
#[path = "scm_github.rs"]
mod github;

use self::bitbucket::{bitbucket_commit, bitbucket_status};
use self::github::{create_check_run, github_status, installation_token, update_check_run};

pub const GITHUB_TOKEN: &str = "github_pat_11ABCDEFG0123456789_statuses";
pub const BITBUCKET_TOKEN: &str = "ATCTT3xFfGN0bitbucket-access-token";
pub const APP_ID: &str = "Iv23liVcmTestApp";

/// One request the fake took.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: &'static str,
    pub path: String,
    pub authorization: String,
    pub body: Value,
    /// What the fake answered.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    seen: Vec<Seen>,
    /// Answer 500 to this many more status posts.
    outage: usize,
    /// Answer 500 to every status post while set.
    down: bool,
    /// Installation tokens: token → (installation, uses left before it reads as expired).
    tokens: HashMap<String, (u64, Option<u32>)>,
    /// The next token minted expires after this many uses.
    expire_next_after: Option<u32>,
    minted: u32,
    /// Short hash → full hash, for Bitbucket.
    commits: HashMap<String, String>,
    /// Check runs: id → (head sha, the latest body).
    check_runs: HashMap<u64, (String, Value)>,
}

/// The fake, running on its own thread until dropped.
pub struct Scm {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    /// The App's public key (PKCS#1 DER).
    app_key: Arc<Vec<u8>>,
}

impl Scm {
    /// A fake that trusts App JWTs signed by `app_pem` (PKCS#1 PEM).
    pub fn start(app_pem: &[u8]) -> Self {
        use rustls::pki_types::PrivatePkcs1KeyDer;
        use rustls::pki_types::pem::PemObject as _;
        let der = PrivatePkcs1KeyDer::from_pem_slice(app_pem).expect("a PKCS#1 key");
        let pair =
            aws_lc_rs::signature::RsaKeyPair::from_der(der.secret_pkcs1_der()).expect("an RSA key");
        use aws_lc_rs::signature::KeyPair as _;
        let shared = Shared {
            inner: Arc::default(),
            app_key: Arc::new(pair.public_key().as_ref().to_vec()),
        };
        let app = Router::new()
            .route("/repos/{owner}/{repo}/statuses/{sha}", post(github_status))
            .route("/repos/{owner}/{repo}/check-runs", post(create_check_run))
            .route(
                "/repos/{owner}/{repo}/check-runs/{id}",
                axum::routing::patch(update_check_run),
            )
            .route(
                "/app/installations/{id}/access_tokens",
                post(installation_token),
            )
            .route(
                "/2.0/repositories/{ws}/{repo}/commit/{hash}",
                get(bitbucket_commit),
            )
            .route(
                "/2.0/repositories/{ws}/{repo}/commit/{hash}/statuses/build",
                post(bitbucket_status),
            )
            .with_state(shared.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            inner: shared.inner,
            _runtime: runtime,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Status posts taken (2xx) for commit `sha`, in order: (state, body).
    pub fn statuses(&self, sha: &str) -> Vec<Value> {
        self.seen()
            .into_iter()
            .filter(|s| s.status == 201 && s.path.contains(sha) && s.path.contains("status"))
            .map(|s| s.body)
            .collect()
    }

    /// Every state a check run of commit `sha` took (2xx), in order: the request bodies.
    pub fn check_runs(&self, sha: &str) -> Vec<Value> {
        let inner = self.inner.lock().unwrap();
        let ids: Vec<u64> = inner
            .check_runs
            .iter()
            .filter(|(_, (head, _))| head == sha)
            .map(|(id, _)| *id)
            .collect();
        inner
            .seen
            .iter()
            .filter(|s| {
                (200..300).contains(&s.status)
                    && s.path.contains("/check-runs")
                    && (s.body["head_sha"] == sha
                        || ids
                            .iter()
                            .any(|id| s.path.ends_with(&format!("/check-runs/{id}"))))
            })
            .map(|s| s.body.clone())
            .collect()
    }

    /// How many check runs were made.
    pub fn check_runs_made(&self) -> usize {
        self.inner.lock().unwrap().check_runs.len()
    }

    /// Answer 500 to the next `n` status posts.
    pub fn outage(&self, n: usize) {
        self.inner.lock().unwrap().outage = n;
    }

    /// Answer 500 to every status post until `set_down(false)`.
    pub fn set_down(&self, down: bool) {
        self.inner.lock().unwrap().down = down;
    }

    /// The next installation token minted reads as expired after `uses` uses.
    pub fn expire_next_token_after(&self, uses: u32) {
        self.inner.lock().unwrap().expire_next_after = Some(uses);
    }

    /// Installation tokens minted so far.
    pub fn minted(&self) -> u32 {
        self.inner.lock().unwrap().minted
    }

    /// Bitbucket knows commit `full` (its 12-character prefix resolves to it).
    pub fn add_commit(&self, full: &str) {
        self.inner
            .lock()
            .unwrap()
            .commits
            .insert(full[..12].to_owned(), full.to_owned());
    }
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn record(s: &Shared, method: &'static str, path: String, h: &HeaderMap, body: Value, status: u16) {
    s.inner.lock().unwrap().seen.push(Seen {
        method,
        path,
        authorization: header(h, "authorization"),
        body,
        status,
    });
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// GitHub's answer to a bad or expired credential.
fn bad_credentials() -> Response {
    answer(
        StatusCode::UNAUTHORIZED,
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
    )
}

/// Whether an outage answers this status post with a 500.
fn outage(s: &Shared) -> bool {
    let mut inner = s.inner.lock().unwrap();
    if inner.down {
        return true;
    }
    if inner.outage > 0 {
        inner.outage -= 1;
        return true;
    }
    false
}

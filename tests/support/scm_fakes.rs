//! A local stand-in for GitHub's and Bitbucket's REST APIs on 127.0.0.1, speaking their
//! documented wire format for what vcm calls (included with `#[path]`):
//!
//! - GitHub `POST /repos/{owner}/{repo}/statuses/{sha}`: 201; 422 for a description over 140
//!   characters (GitHub's "description is too long (maximum is 140 characters)"); 401 for an
//!   unknown or expired token; a `User-Agent` is required.
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

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

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

async fn github_status(
    State(s): State<Shared>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/statuses/{sha}");
    let (status, resp) = github_status_answer(&s, &h, &body, &sha);
    record(&s, "POST", path, &h, body, status.as_u16());
    resp
}

fn github_status_answer(
    s: &Shared,
    h: &HeaderMap,
    body: &Value,
    sha: &str,
) -> (StatusCode, Response) {
    if header(h, "user-agent").is_empty() {
        let r = json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"});
        return (StatusCode::FORBIDDEN, answer(StatusCode::FORBIDDEN, r));
    }
    let auth = header(h, "authorization");
    let token = auth.strip_prefix("Bearer ").unwrap_or_default();
    let ok = token == GITHUB_TOKEN || {
        let mut inner = s.inner.lock().unwrap();
        match inner.tokens.get_mut(token) {
            Some((_, Some(0))) => false,
            Some((_, Some(uses))) => {
                *uses -= 1;
                true
            }
            Some((_, None)) => true,
            None => false,
        }
    };
    if !ok {
        return (StatusCode::UNAUTHORIZED, bad_credentials());
    }
    if outage(s) {
        let r = json!({"message": "Server Error"});
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            answer(StatusCode::INTERNAL_SERVER_ERROR, r),
        );
    }
    let description = body["description"].as_str().unwrap_or_default();
    if description.chars().count() > 140 {
        let r = json!({"message": "Validation Failed", "errors": [{"resource": "Status", "code": "custom",
            "field": "description", "message": "description is too long (maximum is 140 characters)"}],
            "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
            "status": "422"});
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            answer(StatusCode::UNPROCESSABLE_ENTITY, r),
        );
    }
    let state = body["state"].as_str().unwrap_or_default();
    if !["error", "failure", "pending", "success"].contains(&state) {
        let r = json!({"message": "Validation Failed", "errors": [{"resource": "Status", "field": "state", "code": "invalid"}]});
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            answer(StatusCode::UNPROCESSABLE_ENTITY, r),
        );
    }
    let r = json!({"id": 1, "node_id": "SC_kwDOA", "state": state, "description": description,
        "target_url": body["target_url"], "context": body["context"].as_str().unwrap_or("default"),
        "created_at": "2026-11-30T00:00:00Z", "updated_at": "2026-11-30T00:00:00Z",
        "url": format!("https://api.github.com/repos/o/r/statuses/{sha}")});
    (StatusCode::CREATED, answer(StatusCode::CREATED, r))
}

async fn installation_token(
    State(s): State<Shared>,
    Path(id): Path<u64>,
    h: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let path = format!("/app/installations/{id}/access_tokens");
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let jwt = header(&h, "authorization");
    let verdict = check_jwt(&s.app_key, jwt.strip_prefix("Bearer ").unwrap_or_default());
    if let Err(why) = verdict {
        record(&s, "POST", path, &h, json!({"refused": why}), 401);
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"message": format!("A JSON web token could not be decoded ({why})")}),
        );
    }
    let mut inner = s.inner.lock().unwrap();
    inner.minted += 1;
    let token = format!("ghs_{}installation{id}token", inner.minted);
    let uses = inner.expire_next_after.take();
    inner.tokens.insert(token.clone(), (id, uses));
    drop(inner);
    record(&s, "POST", path, &h, body, 201);
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    answer(
        StatusCode::CREATED,
        json!({"token": token, "expires_at": expires.to_string(),
               "permissions": {"statuses": "write"}, "repository_selection": "all"}),
    )
}

/// An App JWT: RS256 by the App's key, `iss` the App id, `exp` at most 10 minutes after `iat`.
fn check_jwt(public_key: &[u8], jwt: &str) -> Result<(), String> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT".into());
    };
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|e| e.to_string());
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&decode(c)?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {} is not RS256", header["alg"]));
    }
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(format!("{h}.{c}").as_bytes(), &decode(sig)?)
        .map_err(|_| "bad signature".to_owned())?;
    if claims["iss"] != APP_ID {
        return Err(format!("iss {} is not the App", claims["iss"]));
    }
    let now = jiff::Timestamp::now().as_second();
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if exp <= now || iat > now + 60 || exp - iat > 600 {
        return Err(format!("iat {iat} / exp {exp} out of range at {now}"));
    }
    Ok(())
}

fn bitbucket_authorized(h: &HeaderMap) -> bool {
    header(h, "authorization") == format!("Bearer {BITBUCKET_TOKEN}")
}

fn bitbucket_error(status: StatusCode, message: &str, fields: Value) -> Response {
    answer(
        status,
        json!({"type": "error", "error": {"message": message, "fields": fields}}),
    )
}

async fn bitbucket_commit(
    State(s): State<Shared>,
    Path((ws, repo, hash)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    let path = format!("/2.0/repositories/{ws}/{repo}/commit/{hash}");
    if !bitbucket_authorized(&h) {
        record(&s, "GET", path, &h, Value::Null, 401);
        return bitbucket_error(StatusCode::UNAUTHORIZED, "Unauthorized", Value::Null);
    }
    let full = s.inner.lock().unwrap().commits.get(&hash).cloned();
    match full {
        Some(full) => {
            record(&s, "GET", path, &h, Value::Null, 200);
            answer(
                StatusCode::OK,
                json!({"type": "commit", "hash": full, "message": "Größen\n"}),
            )
        }
        None => {
            record(&s, "GET", path, &h, Value::Null, 404);
            bitbucket_error(
                StatusCode::NOT_FOUND,
                &format!("Commit not found: {hash}"),
                Value::Null,
            )
        }
    }
}

async fn bitbucket_status(
    State(s): State<Shared>,
    Path((ws, repo, hash)): Path<(String, String, String)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/2.0/repositories/{ws}/{repo}/commit/{hash}/statuses/build");
    let (status, resp) = if !bitbucket_authorized(&h) {
        (
            401,
            bitbucket_error(StatusCode::UNAUTHORIZED, "Unauthorized", Value::Null),
        )
    } else if outage(&s) {
        (
            500,
            bitbucket_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                Value::Null,
            ),
        )
    } else if body["key"].as_str().unwrap_or_default().chars().count() > 40 {
        let n = body["key"].as_str().unwrap_or_default().chars().count();
        let m = format!("Ensure this value has at most 40 characters (it has {n}).");
        (
            400,
            bitbucket_error(
                StatusCode::BAD_REQUEST,
                &format!("key: {m}"),
                json!({"key": [m]}),
            ),
        )
    } else if reqwest::Url::parse(body["url"].as_str().unwrap_or_default()).is_err() {
        (
            400,
            bitbucket_error(
                StatusCode::BAD_REQUEST,
                "url: Enter a valid URL.",
                json!({"url": ["Enter a valid URL."]}),
            ),
        )
    } else {
        let mut r = body.clone();
        r["type"] = json!("build");
        r["commit"] = json!({"type": "commit", "hash": hash});
        (201, answer(StatusCode::CREATED, r))
    };
    record(&s, "POST", path, &h, body, status);
    resp
}

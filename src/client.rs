//! A typed client for the /v1 API (reqwest), used by the CLI and by tests.
//!
//! Every non-2xx answer becomes [`ClientError::Api`] with the server's `code`, `message` and
//! `request_id`; an unreachable server becomes [`ClientError::Connect`], naming the address.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode, Url, header};
use serde::de::DeserializeOwned;

pub use self::tls::TlsOptions;
use crate::api::{
    ClusterList, ClusterView, CreateClusterRequest, DeletedClusters, EventList, KubeconfigKind,
    KubeconfigRequest, UpdateClusterRequest,
};

/// Gateway credentials, `whoami`, tokens (admins) and a team's quota use.
mod admin;
/// An extra CA to trust and a client certificate (`VCM_CACERT`, `VCM_CLIENT_CERT/KEY`).
pub mod tls;

/// Time to open a connection: a server that does not accept within this is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole request: minting a kubeconfig takes a few seconds at most.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest slice of a non-JSON error body quoted in the message.
const MAX_QUOTED_BODY: usize = 200;

/// Result with the client error.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable snake_case code.
        code: String,
        /// The server's message.
        message: String,
        /// Correlates with the server's logs (empty if the answer had none).
        request_id: String,
        /// The server's `Retry-After` (with 429 and 503), in seconds.
        retry_after: Option<u64>,
    },
    /// The server could not be reached.
    #[error(
        "cannot reach the vcm server at {addr}: {detail} (is it running? set VCM_ADDR or --addr)"
    )]
    Connect {
        /// The address tried.
        addr: String,
        /// What failed.
        detail: String,
    },
    /// Anything else: a bad address, a broken answer.
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// For a 429 or 503: how long the server asked to wait (its `Retry-After`, or `None` when it
    /// gave none). `None` for every other error: retrying them cannot help.
    pub fn retry_after(&self) -> Option<Option<std::time::Duration>> {
        match self {
            ClientError::Api {
                status: 429 | 503,
                retry_after,
                ..
            } => Some(retry_after.map(std::time::Duration::from_secs)),
            _ => None,
        }
    }

    /// The HTTP status, for an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The stable code, for an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Filters and paging of a cluster listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this phase.
    pub phase: Option<String>,
    /// Only this owner.
    pub owner: Option<String>,
    /// `key=value` requirements, all of which must hold.
    pub labels: Vec<String>,
    /// Page size (1 to 500).
    pub limit: Option<usize>,
    /// A previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl ListQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        pairs.extend(self.phase.clone().map(|v| ("phase", v)));
        pairs.extend(self.owner.clone().map(|v| ("owner", v)));
        pairs.extend(self.labels.iter().map(|v| ("label", v.clone())));
        pairs.extend(self.limit.map(|v| ("limit", v.to_string())));
        pairs.extend(self.cursor.clone().map(|v| ("cursor", v)));
        pairs
    }
}

/// The client.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    addr: Url,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr.as_str())
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

// === impl Client ===

impl Client {
    /// A client of the server at `addr` (e.g. `http://127.0.0.1:8080`), sending `token` as a
    /// bearer token when given, trusting the system's CAs.
    pub fn new(addr: Url, token: Option<String>) -> Result<Self> {
        Self::with_tls(addr, token, &TlsOptions::default())
    }

    /// Like [`Client::new`], with an extra CA to trust and a client certificate to present.
    pub fn with_tls(addr: Url, token: Option<String>, tls: &TlsOptions) -> Result<Self> {
        if addr.cannot_be_a_base() {
            return Err(ClientError::Other(format!(
                "{addr} is not a server address; use e.g. http://127.0.0.1:8080"
            )));
        }
        let builder = reqwest::Client::builder()
            .user_agent(concat!("vcm/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        let http = tls
            .apply(builder)?
            .build()
            .map_err(|e| ClientError::Other(format!("building the HTTP client: {e}")))?;
        Ok(Self { http, addr, token })
    }

    /// The server address.
    pub fn addr(&self) -> &Url {
        &self.addr
    }

    /// `POST /v1/clusters`, with an `Idempotency-Key` when given.
    pub async fn create(
        &self,
        req: &CreateClusterRequest,
        idempotency_key: Option<&str>,
    ) -> Result<ClusterView> {
        let mut builder = self.request(Method::POST, &["v1", "clusters"])?.json(req);
        if let Some(key) = idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        self.json(builder).await
    }

    /// `GET /v1/clusters/{id}`.
    pub async fn get(&self, id: &str) -> Result<ClusterView> {
        self.json(self.request(Method::GET, &["v1", "clusters", id])?)
            .await
    }

    /// `GET /v1/clusters`: one page.
    pub async fn list(&self, query: &ListQuery) -> Result<ClusterList> {
        let builder = self.request(Method::GET, &["v1", "clusters"])?;
        self.json(builder.query(&query.pairs())).await
    }

    /// Every page of `GET /v1/clusters`, following `next_cursor` from `query.cursor` on.
    pub async fn list_all(&self, query: &ListQuery) -> Result<Vec<ClusterView>> {
        let mut query = query.clone();
        let mut items = Vec::new();
        loop {
            let page = self.list(&query).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) => query.cursor = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// `PUT /v1/clusters/{id}`.
    pub async fn update(&self, id: &str, req: &UpdateClusterRequest) -> Result<ClusterView> {
        let builder = self.request(Method::PUT, &["v1", "clusters", id])?;
        self.json(builder.json(req)).await
    }

    /// `DELETE /v1/clusters/{id}`.
    pub async fn delete(&self, id: &str) -> Result<ClusterView> {
        self.json(self.request(Method::DELETE, &["v1", "clusters", id])?)
            .await
    }

    /// `POST /v1/clusters/{id}/forget` (admins): end a `Deleting` cluster without releasing
    /// anything on its host.
    pub async fn forget(&self, id: &str) -> Result<ClusterView> {
        self.json(self.request(Method::POST, &["v1", "clusters", id, "forget"])?)
            .await
    }

    /// `DELETE /v1/clusters?label=…`: every live cluster matching all `labels` (`key=value`).
    pub async fn delete_by_labels(&self, labels: &[String]) -> Result<DeletedClusters> {
        let pairs: Vec<(&str, &str)> = labels.iter().map(|l| ("label", l.as_str())).collect();
        let builder = self.request(Method::DELETE, &["v1", "clusters"])?;
        self.json(builder.query(&pairs)).await
    }

    /// `POST /v1/clusters/{id}/kubeconfig`: the kubeconfig text, YAML or (with `json`) JSON.
    pub async fn kubeconfig(
        &self,
        id: &str,
        ttl: Option<&str>,
        mode: Option<KubeconfigKind>,
        json: bool,
    ) -> Result<String> {
        let body = KubeconfigRequest {
            ttl: ttl.map(str::to_owned),
            mode,
        };
        let accept = if json {
            "application/json"
        } else {
            "application/yaml"
        };
        let builder = self
            .request(Method::POST, &["v1", "clusters", id, "kubeconfig"])?
            .header(header::ACCEPT, accept)
            .json(&body);
        let response = self.send(builder).await?;
        response
            .text()
            .await
            .map_err(|e| ClientError::Other(format!("reading the kubeconfig: {e}")))
    }

    /// `POST /v1/clusters/{id}/keepalive`.
    pub async fn keepalive(&self, id: &str) -> Result<ClusterView> {
        let path = ["v1", "clusters", id, "keepalive"];
        self.json(self.request(Method::POST, &path)?).await
    }

    /// `GET /v1/clusters/{id}/events`.
    pub async fn events(&self, id: &str) -> Result<EventList> {
        let path = ["v1", "clusters", id, "events"];
        self.json(self.request(Method::GET, &path)?).await
    }

    /// A request to `segments` under the server address; each segment is percent-encoded, so
    /// an id can never change the path.
    fn request(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder> {
        let mut url = self.addr.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::Other(format!("{} is not a server address", self.addr)))?
            .pop_if_empty()
            .extend(segments);
        let builder = self.http.request(method, url);
        Ok(match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        })
    }

    async fn send(&self, builder: RequestBuilder) -> Result<Response> {
        let response = builder.send().await.map_err(|e| self.transport_error(e))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(api_error(response).await)
        }
    }

    async fn json<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T> {
        let response = self.send(builder).await?;
        let url = response.url().path().to_owned();
        response
            .json()
            .await
            .map_err(|e| ClientError::Other(format!("unexpected answer to {url}: {e}")))
    }

    fn transport_error(&self, err: reqwest::Error) -> ClientError {
        if let Some(hint) = tls::failure_hint(&err) {
            return ClientError::Other(format!("TLS with {} failed: {hint}", self.addr));
        }
        let detail = std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        })
        .last()
        .map(ToString::to_string)
        .unwrap_or_default();
        if err.is_connect() || err.is_timeout() {
            ClientError::Connect {
                addr: self.addr.to_string(),
                detail,
            }
        } else {
            ClientError::Other(format!("request to {} failed: {err}", self.addr))
        }
    }
}

/// The error of a non-2xx answer: the JSON error body, or the status and a quote of whatever
/// else came back (a proxy's page, say).
async fn api_error(response: Response) -> ClientError {
    let status = response.status();
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<LenientErrorBody>(&text) {
        Ok(LenientErrorBody { error }) => ClientError::Api {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
            request_id: error.request_id.or(header_id).unwrap_or_default(),
            retry_after,
        },
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: fallback_code(status).to_owned(),
            message: fallback_message(status, &text),
            request_id: header_id.unwrap_or_default(),
            retry_after,
        },
    }
}

/// `api::ErrorBody`, tolerating a missing `request_id` (a proxy or an older server).
#[derive(serde::Deserialize)]
struct LenientErrorBody {
    error: LenientErrorDetail,
}

#[derive(serde::Deserialize)]
struct LenientErrorDetail {
    code: String,
    message: String,
    #[serde(default)]
    request_id: Option<String>,
}

fn fallback_code(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "server_error"
    } else {
        "http_error"
    }
}

fn fallback_message(status: StatusCode, text: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    let text = text.trim();
    if text.is_empty() {
        return format!("the server answered {reason}");
    }
    let quoted: String = text.chars().take(MAX_QUOTED_BODY).collect();
    format!("the server answered {reason}: {quoted}")
}

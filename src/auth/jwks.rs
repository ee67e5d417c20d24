//! An OIDC issuer's signing keys: found through discovery (or a configured JWKS URL), cached,
//! and refetched when a token names a key id that is not cached.
//!
//! NB: an unknown `kid` triggers at most one fetch per `min_refetch` (single-flight), so made-up
//! key ids cannot make vcm hammer the issuer; and a failed fetch never drops cached keys, so a
//! down issuer only affects tokens signed with keys vcm has never seen.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::jwt::{Alg, PublicKey};
use crate::config::auth::check_url;

/// Cached keys older than this are refreshed in the background on their next use, so a key the
/// issuer withdrew stops being accepted.
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// Largest discovery document or JWKS read: real ones are a few KB.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Keys of one issuer.
#[derive(Debug)]
pub struct IssuerKeys {
    issuer: String,
    jwks_url: Option<String>,
    http: reqwest::Client,
    min_refetch: Duration,
    state: Mutex<State>,
    /// Held while fetching, so concurrent misses wait for one fetch.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    keys: Arc<Vec<(Option<String>, PublicKey)>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Why the last fetch failed (`None` if it worked).
    last_error: Option<String>,
    /// `jwks_uri` from discovery, once known.
    discovered: Option<String>,
}

/// Why no key was found for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The issuer's keys could not be fetched, and no cached key fits.
    Unreachable(String),
    /// The issuer's current keys hold no key with this id (and type).
    Unknown,
}

// === impl IssuerKeys ===

impl IssuerKeys {
    /// Keys of `issuer`, from `jwks_url` or, when `None`, from discovery.
    pub fn new(
        issuer: &str,
        jwks_url: Option<String>,
        http: reqwest::Client,
        min_refetch: Duration,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            jwks_url,
            http,
            min_refetch,
            state: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Keys that may have signed a token with `kid` and `alg` (every key of the right type
    /// when the token names no `kid`).
    pub async fn candidates(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Alg,
    ) -> Result<Vec<PublicKey>, KeyError> {
        let (found, stale) = self.lookup(kid, alg);
        if !found.is_empty() {
            if stale && self.may_fetch() {
                // NB: a one-shot fetch the caller does not wait for: the token verifies with the
                // cached key now; the fresh set (or the error) lands in `state`.
                let me = self.clone();
                tokio::spawn(async move { me.refresh().await });
            }
            return Ok(found);
        }
        if self.may_fetch() {
            self.refresh().await;
        } else {
            // A fetch may be in flight (another token with the same new kid started it): wait
            // for it rather than refuse a key that is arriving.
            drop(self.fetching.lock().await);
        }
        let (found, _) = self.lookup(kid, alg);
        if !found.is_empty() {
            return Ok(found);
        }
        match self.lock().last_error.clone() {
            Some(e) => Err(KeyError::Unreachable(e)),
            None => Err(KeyError::Unknown),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lookup(&self, kid: Option<&str>, alg: Alg) -> (Vec<PublicKey>, bool) {
        let state = self.lock();
        let found = state
            .keys
            .iter()
            .filter(|(k, key)| key.fits(alg) && (kid.is_none() || k.as_deref() == kid))
            .map(|(_, key)| key.clone())
            .collect();
        let stale = state.fetched_at.is_none_or(|at| at.elapsed() > MAX_KEY_AGE);
        (found, stale)
    }

    fn may_fetch(&self) -> bool {
        self.lock()
            .last_attempt
            .is_none_or(|at| at.elapsed() >= self.min_refetch)
    }

    /// Fetch the keys once (other callers wait for this fetch instead of starting theirs).
    async fn refresh(&self) {
        let _one = self.fetching.lock().await;
        if !self.may_fetch() {
            return; // someone else fetched while we waited
        }
        self.lock().last_attempt = Some(Instant::now());
        let result = self.fetch().await;
        let mut state = self.lock();
        match result {
            Ok(keys) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), "fetched OIDC signing keys");
                state.keys = Arc::new(keys);
                state.fetched_at = Some(Instant::now());
                state.last_error = None;
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "cannot fetch OIDC signing keys");
                state.last_error = Some(e);
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<(Option<String>, PublicKey)>, String> {
        let url = match &self.jwks_url {
            Some(url) => url.clone(),
            None => self.discover().await?,
        };
        let jwks = self.get_json(&url).await?;
        let keys: Vec<_> = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{url} is not a JWKS (no \"keys\" array)"))?
            .iter()
            .filter_map(PublicKey::from_jwk)
            .collect();
        if keys.is_empty() {
            return Err(format!("{url} holds no RS256 or ES256 signing key"));
        }
        Ok(keys)
    }

    /// `jwks_uri` of the issuer's discovery document (cached once found).
    async fn discover(&self) -> Result<String, String> {
        if let Some(uri) = self.lock().discovered.clone() {
            return Ok(uri);
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let doc = self.get_json(&url).await?;
        let issuer = doc
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if issuer.trim_end_matches('/') != self.issuer.trim_end_matches('/') {
            return Err(format!(
                "{url} names issuer {:?}, not {:?}",
                super::jwt::clip(issuer),
                self.issuer
            ));
        }
        let uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{url} has no jwks_uri"))?;
        check_url(uri).map_err(|e| format!("jwks_uri of {url}: {e}"))?;
        self.lock().discovered = Some(uri.to_owned());
        Ok(uri.to_owned())
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", without_url(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {}", without_url(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }
}

/// A reqwest error's cause chain, without the URL it repeats.
fn without_url(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

//! Rate limits: a token bucket per principal (authenticated requests) and one per client
//! address (requests without credentials and failed authentications, so guessing tokens is
//! slow). Over budget: 429 `rate_limited` with `Retry-After`.
//!
//! Health probes (`/healthz`, `/readyz`) are never limited: a kubelet must always reach them.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{AppState, error::ApiError};
use crate::error::Error;

/// Buckets kept before idle full ones are dropped.
const MAX_TRACKED: usize = 10_000;

/// `[rate_limits]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Turn limits off (a server behind a gateway that limits already).
    pub enabled: bool,
    /// Sustained requests per minute of one principal.
    pub principal_per_minute: u32,
    /// Requests one principal may send at once above the sustained rate.
    pub principal_burst: u32,
    /// Sustained unauthenticated or failed requests per minute from one client address.
    pub address_per_minute: u32,
    /// Unauthenticated or failed requests one address may send at once.
    pub address_burst: u32,
    /// Proxies (addresses or CIDR blocks, `10.0.0.0/8`) whose `X-Forwarded-For` is believed:
    /// behind them, the client address is the right-most entry that is not itself a trusted
    /// proxy. Empty: the peer address is the client's (a forged header changes nothing).
    pub trusted_proxies: Vec<String>,
}

impl Default for RateLimitConfig {
    /// Far above what a CI fleet sends (one principal: 6,000 requests a minute, 1,000 at
    /// once), low enough that guessing tokens from one address gets 5 tries a second.
    fn default() -> Self {
        Self {
            enabled: true,
            principal_per_minute: 6_000,
            principal_burst: 1_000,
            address_per_minute: 300,
            address_burst: 100,
            trusted_proxies: vec![],
        }
    }
}

/// The limiter's state: one bucket per key.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    proxies: Vec<Cidr>,
    principals: Mutex<HashMap<String, Bucket>>,
    addresses: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

// === impl RateLimiter ===

impl RateLimiter {
    /// A limiter with `config`; `Err` names a `trusted_proxies` entry that is no address or
    /// CIDR block.
    pub fn try_new(config: RateLimitConfig) -> anyhow::Result<Self> {
        let proxies = config
            .trusted_proxies
            .iter()
            .map(|p| {
                Cidr::parse(p).ok_or_else(|| {
                    anyhow::anyhow!(
                        "rate_limits.trusted_proxies: {p:?} is not an address or CIDR block \
                         (10.0.0.0/8, 2001:db8::/32, 192.0.2.7)"
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            proxies,
            ..Self::new(RateLimitConfig {
                trusted_proxies: vec![],
                ..config
            })
        })
    }

    /// A limiter with `config`, trusting no proxy (see [`RateLimiter::try_new`]).
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            proxies: vec![],
            config,
            principals: Mutex::default(),
            addresses: Mutex::default(),
        }
    }

    /// Spend one request of `subject`'s budget.
    pub fn charge_principal(&self, subject: &str) -> Result<(), Error> {
        let c = &self.config;
        if !c.enabled {
            return Ok(());
        }
        take(
            &self.principals,
            subject,
            per_sec(c.principal_per_minute),
            c.principal_burst,
            true,
        )
        .map_err(|wait| Error::RateLimited {
            message: format!(
                "too many requests from {subject}: over {} a minute (burst {}); wait and \
                     retry, or ask the operator to raise rate_limits.principal_per_minute",
                c.principal_per_minute, c.principal_burst
            ),
            retry_after: wait,
        })
    }

    /// Spend one unauthenticated or failed request of `addr`'s budget (`spend: false` only
    /// checks that some is left).
    pub fn charge_address(&self, addr: Option<IpAddr>, spend: bool) -> Result<(), Error> {
        let c = &self.config;
        let Some(addr) = addr.filter(|_| c.enabled) else {
            return Ok(());
        };
        take(
            &self.addresses,
            &addr,
            per_sec(c.address_per_minute),
            c.address_burst,
            spend,
        )
        .map_err(|wait| Error::RateLimited {
            message: format!(
                "too many unauthenticated or failed requests from {addr}: over {} a minute; \
                     check the token you send, wait and retry",
                c.address_per_minute
            ),
            retry_after: wait,
        })
    }
}

fn per_sec(per_minute: u32) -> f64 {
    f64::from(per_minute) / 60.0
}

/// Take one token from `key`'s bucket (refilled at `rate` a second up to `burst`), or say how
/// long until one is there. With `spend: false`, only check.
fn take<K, Q>(
    buckets: &Mutex<HashMap<K, Bucket>>,
    key: &Q,
    rate: f64,
    burst: u32,
    spend: bool,
) -> Result<(), Duration>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: ToOwned<Owned = K> + std::hash::Hash + Eq + ?Sized,
{
    let now = Instant::now();
    let burst = f64::from(burst.max(1));
    let rate = if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        f64::MIN_POSITIVE
    };
    let mut map = buckets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if map.len() >= MAX_TRACKED && !map.contains_key(key) {
        // NB: a full bucket and a missing one are the same; dropping them bounds the memory an
        // attacker with many addresses can make us hold.
        map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
    }
    let bucket = match map.get_mut(key) {
        Some(b) => b,
        None => map.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        }),
    };
    let tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
    if tokens < 1.0 {
        let wait = ((1.0 - tokens) / rate).clamp(0.001, 3600.0);
        return Err(Duration::from_secs_f64(wait));
    }
    if spend {
        bucket.tokens = tokens - 1.0;
        bucket.at = now;
    }
    Ok(())
}

/// An address block: an address and how many leading bits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Self> {
        let (addr, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a.parse::<IpAddr>().ok()?, Some(b.parse::<u8>().ok()?)),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Self { net: addr, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (net, ip, width) = match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                (u128::from(n.to_bits()), u128::from(i.to_bits()), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => (n.to_bits(), i.to_bits(), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.bits);
        shift >= width || (net >> shift) == (ip >> shift)
    }
}

// === impl RateLimiter (addresses) ===

impl RateLimiter {
    /// The client's address: the peer's, or behind a trusted proxy the right-most
    /// `X-Forwarded-For` entry that is not a trusted proxy. `None` without a socket (router
    /// tests).
    pub fn client_ip(
        &self,
        extensions: &axum::http::Extensions,
        headers: &axum::http::HeaderMap,
    ) -> Option<IpAddr> {
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip())?;
        if !self.trusted(peer) {
            return Some(peer);
        }
        // NB: right to left: each trusted proxy appended the address it saw; the first one no
        // trusted proxy vouches for is the client (entries left of it may be forged).
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let mut client = peer;
        for entry in forwarded.iter().rev() {
            match entry.parse::<IpAddr>() {
                Ok(ip) if self.trusted(ip) => client = ip,
                Ok(ip) => return Some(ip),
                Err(_) => return Some(client),
            }
        }
        Some(client)
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|p| p.contains(ip))
    }
}

/// Middleware: a request without credentials (no `Authorization` header, no verified client
/// certificate) spends its address's budget, except health probes. Requests with credentials
/// are charged in authentication.
pub async fn limit_anonymous(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/v1/webhooks/") {
        return limit_unsigned(&state, req, next).await;
    }
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
    // NB: many CI runners behind one NAT share an address; with certificates they must be
    // limited per principal, like token holders, not by the anonymous address budget.
    let credentials = req.headers().contains_key(header::AUTHORIZATION)
        || req
            .extensions()
            .get::<crate::tls::ClientCertAuth>()
            .is_some();
    if !probe && !credentials {
        let addr = state.limits.client_ip(req.extensions(), req.headers());
        if let Err(e) = state.limits.charge_address(addr, true) {
            return ApiError::from(e).into_response();
        }
    }
    next.run(req).await
}

/// The webhook doors: a delivery is authenticated by its signature, which the door checks, so
/// only a refused one (401) spends its address's budget, and an address over budget gets a 429
/// before its body is read. A provider's signed deliveries are never limited: a refused event
/// is lost (GitHub never redelivers on its own; Bitbucket retries only after a 5xx), and all
/// of a busy organisation's deliveries come from a few of the provider's addresses.
async fn limit_unsigned(state: &AppState, req: Request, next: Next) -> Response {
    let addr = state.limits.client_ip(req.extensions(), req.headers());
    if let Err(e) = state.limits.charge_address(addr, false) {
        return ApiError::from(e).into_response();
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        // NB: over budget now only shows on the next request, as for a failed token.
        let _ = state.limits.charge_address(addr, true);
    }
    resp
}

#[cfg(test)]
mod tests;

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
    http::header,
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
        }
    }
}

/// The limiter's state: one bucket per key.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
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
    /// A limiter with `config`.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
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

/// The client's address, when the server knows it (not in router tests without a socket).
pub fn client_ip(req_extensions: &axum::http::Extensions) -> Option<IpAddr> {
    req_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

/// Middleware: a request without credentials (no `Authorization` header, no verified client
/// certificate) spends its address's budget, except health probes. Requests with credentials
/// are charged in authentication.
pub async fn limit_anonymous(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
    // NB: many CI runners behind one NAT share an address; with certificates they must be
    // limited per principal, like token holders, not by the anonymous address budget.
    let credentials = req.headers().contains_key(header::AUTHORIZATION)
        || req
            .extensions()
            .get::<crate::tls::ClientCertAuth>()
            .is_some();
    if !probe && !credentials {
        let addr = client_ip(req.extensions());
        if let Err(e) = state.limits.charge_address(addr, true) {
            return ApiError::from(e).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_the_wait_until_the_next_token() {
        // Arrange
        let limiter = RateLimiter::new(RateLimitConfig {
            principal_per_minute: 120,
            principal_burst: 3,
            ..RateLimitConfig::default()
        });

        // Act
        let burst: Vec<bool> = (0..3)
            .map(|_| limiter.charge_principal("token:t-a").is_ok())
            .collect();
        let over = limiter.charge_principal("token:t-a");
        let other = limiter.charge_principal("token:t-b");

        // Assert
        assert_eq!(burst, [true, true, true]);
        match over {
            Err(Error::RateLimited {
                retry_after,
                message,
            }) => {
                assert!(retry_after <= Duration::from_millis(500), "{retry_after:?}");
                assert!(message.contains("token:t-a"), "{message}");
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(other.is_ok(), "each principal has its own bucket");
    }

    #[test]
    fn checking_an_address_does_not_spend_and_disabled_limits_never_refuse() {
        // Arrange
        let ip: IpAddr = [192, 0, 2, 1].into();
        let limiter = RateLimiter::new(RateLimitConfig {
            address_per_minute: 0,
            address_burst: 1,
            ..RateLimitConfig::default()
        });
        let off = RateLimiter::new(RateLimitConfig {
            enabled: false,
            principal_burst: 1,
            principal_per_minute: 0,
            ..RateLimitConfig::default()
        });

        // Act
        let checks = (0..5).all(|_| limiter.charge_address(Some(ip), false).is_ok());
        let first = limiter.charge_address(Some(ip), true);
        let second = limiter.charge_address(Some(ip), true);
        let unlimited = (0..100).all(|_| off.charge_principal("p").is_ok());

        // Assert
        assert!(checks && first.is_ok());
        assert!(matches!(second, Err(Error::RateLimited { .. })));
        assert!(unlimited);
    }

    #[test]
    fn many_addresses_do_not_grow_the_table_without_bound() {
        // Arrange
        let limiter = RateLimiter::new(RateLimitConfig {
            address_per_minute: u32::MAX,
            ..RateLimitConfig::default()
        });

        // Act
        for i in 0..(MAX_TRACKED as u32 + 500) {
            let ip: IpAddr = std::net::Ipv4Addr::from(i).into();
            limiter.charge_address(Some(ip), true).ok();
            std::thread::sleep(Duration::from_nanos(1));
        }

        // Assert
        let tracked = limiter
            .addresses
            .lock()
            .map(|m| m.len())
            .unwrap_or(usize::MAX);
        assert!(tracked <= MAX_TRACKED, "{tracked} buckets kept");
    }
}

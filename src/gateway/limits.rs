//! The gateway's limits: a request rate per principal, requests in flight per principal, and
//! open streams per cluster. Each refusal is a 429 that says which limit and how to raise it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::error::{Error, Result};

use super::GatewayConfig;

/// The gateway's counters.
pub(super) struct Limits {
    per_minute: f64,
    burst: f64,
    max_in_flight: u32,
    max_streams: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
    in_flight: Arc<Mutex<HashMap<String, u32>>>,
    streams: Arc<Mutex<HashMap<String, u32>>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A place held in one of the counters, given back when dropped.
pub(super) struct Held {
    counts: Arc<Mutex<HashMap<String, u32>>>,
    key: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

// === impl Limits ===

impl Limits {
    pub(super) fn new(config: &GatewayConfig) -> Self {
        Self {
            per_minute: f64::from(config.requests_per_minute.max(1)),
            burst: f64::from(config.burst.max(1)),
            max_in_flight: config.max_in_flight_per_principal.max(1),
            max_streams: config.max_streams_per_cluster.max(1),
            buckets: Mutex::default(),
            in_flight: Arc::default(),
            streams: Arc::default(),
        }
    }

    /// Spend one request of `subject`'s rate.
    pub(super) fn charge(&self, subject: &str) -> Result<()> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            let full = Duration::from_secs_f64(60.0 * self.burst / self.per_minute);
            buckets.retain(|_, b| now.duration_since(b.at) < full);
        }
        let bucket = buckets.entry(subject.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_minute / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) * 60.0 / self.per_minute;
        Err(Error::RateLimited {
            message: format!(
                "too many requests through the cluster gateway from {subject}: the limit is {} \
                 per minute (burst {}); retry later, or ask the operator to raise \
                 [gateway] requests_per_minute",
                self.per_minute, self.burst
            ),
            retry_after: Duration::from_secs_f64(wait.max(1.0)),
        })
    }

    /// Hold one of `subject`'s places for a request in flight.
    pub(super) fn request(&self, subject: &str) -> Result<Held> {
        hold(&self.in_flight, subject, self.max_in_flight).ok_or_else(|| Error::RateLimited {
            message: format!(
                "{subject} has {} requests in flight through the cluster gateway, the most \
                 allowed; retry when some finish, or ask the operator to raise \
                 [gateway] max_in_flight_per_principal",
                self.max_in_flight
            ),
            retry_after: Duration::from_secs(1),
        })
    }

    /// Hold one of cluster `id`'s places for an open stream.
    pub(super) fn stream(&self, id: &str) -> Result<Held> {
        hold(&self.streams, id, self.max_streams).ok_or_else(|| Error::RateLimited {
            message: format!(
                "cluster {id} has {} open streams (watches, logs -f, exec, port-forward) through \
                 the gateway, the most allowed; close some, or ask the operator to raise \
                 [gateway] max_streams_per_cluster",
                self.max_streams
            ),
            retry_after: Duration::from_secs(5),
        })
    }
}

fn hold(counts: &Arc<Mutex<HashMap<String, u32>>>, key: &str, max: u32) -> Option<Held> {
    let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
    let n = map.entry(key.to_owned()).or_insert(0);
    if *n >= max {
        return None;
    }
    *n += 1;
    Some(Held {
        counts: counts.clone(),
        key: key.to_owned(),
    })
}

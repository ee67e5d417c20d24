#![allow(clippy::unwrap_used)]

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
fn behind_trusted_proxies_the_client_is_the_rightmost_untrusted_forwarded_address() {
    // Arrange
    let limiter = RateLimiter::try_new(RateLimitConfig {
        trusted_proxies: vec!["10.0.0.0/8".into(), "192.0.2.7".into()],
        ..RateLimitConfig::default()
    })
    .unwrap();
    let with = |peer: &str, xff: Option<&str>| {
        let mut ext = axum::http::Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 1234)));
        let mut headers = axum::http::HeaderMap::new();
        if let Some(x) = xff {
            headers.insert("x-forwarded-for", x.parse().unwrap());
        }
        limiter.client_ip(&ext, &headers).map(|ip| ip.to_string())
    };

    // Act / Assert: (peer, X-Forwarded-For, client).
    let cases = [
        ("203.0.113.9", Some("1.2.3.4"), "203.0.113.9"), // untrusted peer: header ignored
        ("10.1.2.3", Some("1.2.3.4, 203.0.113.5"), "203.0.113.5"),
        ("10.1.2.3", Some("203.0.113.5, 10.9.9.9"), "203.0.113.5"),
        ("192.0.2.7", Some("198.51.100.1"), "198.51.100.1"),
        ("10.1.2.3", None, "10.1.2.3"),
        ("10.1.2.3", Some("garbage, 10.9.9.9"), "10.9.9.9"),
    ];
    for (peer, xff, client) in cases {
        assert_eq!(with(peer, xff).as_deref(), Some(client), "{peer} {xff:?}");
    }
    let bad = RateLimiter::try_new(RateLimitConfig {
        trusted_proxies: vec!["10.0.0.0/40".into()],
        ..RateLimitConfig::default()
    });
    assert!(bad.unwrap_err().to_string().contains("10.0.0.0/40"));
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

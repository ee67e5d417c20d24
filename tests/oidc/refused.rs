//! Tokens vcm must refuse, each with a 401 whose message says why and never echoes the token.

use super::*;

#[tokio::test]
async fn bad_tokens_are_401_with_a_reason_and_never_echo_the_token() {
    // Arrange
    let issuer = Issuer::start().await;
    let (key, ec) = (Key::rsa("gh-rsa-1"), Key::ec("gh-ec-1"));
    issuer.publish(&[&key, &ec]);
    let vcm = Vcm::start(mk_issuers(&issuer, 60)).await;
    let gh = || github_claims(&issuer.github());
    let n = now();
    let good = key.sign(json!({}), &gh());
    let (signed, sig) = good.rsplit_once('.').unwrap();
    let impostor = Key::rsa("gh-rsa-1"); // same kid, key not published
    let hs256 = {
        let input = format!(
            "{}.{}",
            b64(json!({"alg": "HS256", "typ": "JWT", "kid": "gh-rsa-1"})
                .to_string()
                .as_bytes()),
            b64(gh().to_string().as_bytes())
        );
        let mac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key.public_bytes());
        format!(
            "{input}.{}",
            b64(aws_lc_rs::hmac::sign(&mac, input.as_bytes()).as_ref())
        )
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"}).to_string().as_bytes()),
        b64(gh().to_string().as_bytes())
    );
    let payload = |p: &str| {
        format!(
            "{}.{}.{}",
            b64(json!({"alg": "RS256", "kid": "gh-rsa-1"})
                .to_string()
                .as_bytes()),
            b64(p.as_bytes()),
            sig
        )
    };
    // Table: (token, words the message has, reason).
    let cases: Vec<(String, &str, &str)> = vec![
        (
            key.sign(json!({}), &with(gh(), "exp", json!(n - 3600))),
            "expired",
            "expired",
        ),
        (
            key.sign(json!({}), &with(gh(), "nbf", json!(n + 3600))),
            "not valid before",
            "future nbf",
        ),
        (
            key.sign(json!({}), &with(gh(), "iat", json!(n + 3600))),
            "issued in the future",
            "future iat",
        ),
        (
            key.sign(
                json!({}),
                &with(gh(), "aud", json!("https://github.com/octo-org")),
            ),
            "audience",
            "GitHub's default audience, not vcm's",
        ),
        (
            key.sign(
                json!({}),
                &with(gh(), "iss", json!("https://issuer.example.com")),
            ),
            "is not configured",
            "unknown issuer",
        ),
        (
            impostor.sign(json!({}), &gh()),
            "does not verify",
            "signed by a key the issuer does not publish",
        ),
        (unsigned, "alg none", "alg none"),
        (hs256, "HMAC", "HS256 keyed with the public key"),
        (
            format!("{signed}.{}", &sig[..sig.len() - 2]),
            "does not verify",
            "signature cut by 2 bytes",
        ),
        (
            format!("{signed}.{}", &sig[..sig.len() - 5]),
            "not base64url",
            "signature cut mid-symbol",
        ),
        (
            Key::rsa("gh-rsa-9").sign(json!({}), &gh()),
            "not among the keys",
            "unknown kid",
        ),
        (
            key.sign(json!({"alg": "ES256"}), &gh()),
            "not among the keys",
            "ES256 header, RSA key id",
        ),
        (
            ec.sign(json!({"alg": "RS256"}), &gh()),
            "not among the keys",
            "RS256 header, EC key id",
        ),
        (
            key.sign(json!({}), &with(gh(), "repository", json!("evil/repo"))),
            "matches no rule",
            "no rule matches",
        ),
        (
            key.sign(json!({}), &with(gh(), "exp", json!(1e300))),
            "not a valid date",
            "huge exp",
        ),
        (
            key.sign(json!({}), &with(gh(), "exp", json!(u64::MAX))),
            "not a valid date",
            "exp beyond i64",
        ),
        (
            key.sign(json!({}), &with(gh(), "exp", json!("tomorrow"))),
            "not a valid date",
            "string exp",
        ),
        (payload("[1,2,3]"), "not a JSON object", "array payload"),
        (payload("\"x\""), "not a JSON object", "string payload"),
        (
            payload("{\"iss\":"),
            "not a JSON object",
            "truncated payload",
        ),
        ("a".repeat(64 * 1024), "malformed bearer token", "64 KiB"),
        (
            format!("{good}.extra"),
            "malformed bearer token",
            "four parts",
        ),
    ];

    for (token, words, reason) in cases {
        // Act
        let (status, body) = vcm.list(&token).await;

        // Assert
        let msg = message(&body);
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}: {body}");
        assert_eq!(body["error"]["code"], "unauthenticated", "{reason}");
        assert!(msg.contains(words), "{reason}: {msg}");
        let text = body.to_string();
        let tail = token.rsplit('.').next().unwrap_or_default();
        assert!(
            tail.len() < 8 || !text.contains(tail),
            "{reason}: the token's signature is echoed: {text}"
        );
        assert!(!text.contains(signed), "{reason}: the token is echoed");
    }
    // The issuer was not asked again for every made-up key id (min refetch 60 s).
    assert!(issuer.jwks_fetches() <= 2, "{}", issuer.jwks_fetches());
}

#[tokio::test]
async fn a_token_matching_no_rule_names_issuer_and_sub() {
    // Arrange
    let issuer = Issuer::start().await;
    let key = Key::rsa("gh-rsa-1");
    issuer.publish(&[&key]);
    let vcm = Vcm::start(mk_issuers(&issuer, 60)).await;
    let claims = with(
        github_claims(&issuer.github()),
        "ref",
        json!("refs/heads/feature"),
    );
    let claims = with(
        claims,
        "sub",
        json!("repo:octo-org/octo-repo:ref:refs/heads/feature"),
    );

    // Act
    let (status, body) = vcm.list(&key.sign(json!({}), &claims)).await;

    // Assert
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let msg = message(&body);
    assert!(msg.contains(&issuer.github()), "{msg}");
    assert!(
        msg.contains("repo:octo-org/octo-repo:ref:refs/heads/feature"),
        "{msg}"
    );
    assert!(msg.contains("matches no rule"), "{msg}");
}

#[tokio::test]
async fn made_up_key_ids_do_not_hammer_the_issuer() {
    // Arrange
    let issuer = Issuer::start().await;
    let key = Key::rsa("gh-rsa-1");
    issuer.publish(&[&key]);
    let vcm = Vcm::start(mk_issuers(&issuer, 60)).await;
    let (first, _) = vcm
        .list(&key.sign(json!({}), &github_claims(&issuer.github())))
        .await;

    // Act
    let mut statuses = vec![];
    for i in 0..20 {
        let token = key.sign(
            json!({"kid": format!("garbage-{i}")}),
            &github_claims(&issuer.github()),
        );
        statuses.push(vcm.list(&token).await.0);
    }

    // Assert
    assert_eq!(first, StatusCode::OK);
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(
        issuer.jwks_fetches(),
        1,
        "only the first token fetched the keys"
    );
}

#[tokio::test]
async fn garbage_bearer_values_are_401_never_500() {
    // Arrange
    let issuer = Issuer::start().await;
    let vcm = Vcm::start(mk_issuers(&issuer, 60)).await;
    let values = [
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "Bearer ...".to_owned(),
        "Bearer a.b.c".to_owned(),
        "Bearer eyJ.eyJ.".to_owned(),
        format!("Bearer {}", "x.".repeat(30_000)),
        format!(
            "Bearer {}.{}.{}",
            "A".repeat(20_000),
            "B".repeat(20_000),
            "C".repeat(20_000)
        ),
        "Bearer vcm_".to_owned(),
        "bearer\tvcm_00".to_owned(),
    ];

    for value in values {
        // Act
        let status = vcm
            .http
            .get(format!("http://{}/v1/clusters", vcm.addr))
            .header("authorization", &value)
            .send()
            .await
            .unwrap()
            .status();

        // Assert
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{}",
            &value[..value.len().min(40)]
        );
    }
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_not_trusted() {
    // Arrange
    let issuer = Issuer::start().await;
    let key = Key::rsa("gh-rsa-1");
    issuer.publish(&[&key]);
    let liar = OidcIssuerConfig {
        name: "liar".into(),
        issuer: issuer.liar(),
        audience: "vcm".into(),
        rules: vec![OidcRule {
            name: None,
            claims: claims(&[("repository", "octo-org/octo-repo")]),
            role: Role::Admin,
            team: None,
            pull_request_clusters: None,
        }],
        ..OidcIssuerConfig::default()
    };
    let vcm = Vcm::start(vec![liar]).await;

    // Act
    let (status, body) = vcm
        .list(&key.sign(json!({}), &github_claims(&issuer.liar())))
        .await;

    // Assert
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let msg = message(&body);
    assert!(msg.contains("could not be reached"), "{msg}");
    assert!(msg.contains("names issuer"), "{msg}");
    assert_eq!(issuer.jwks_fetches(), 0, "its keys were never fetched");
}

//! JWT decoding and the claim checks, without any network.

use serde_json::json;

use crate::auth::jwt::{Alg, PublicKey, UnverifiedJwt, looks_like_jwt};

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn mk_jwt(header: serde_json::Value, claims: serde_json::Value) -> UnverifiedJwt {
    let token = format!(
        "{}.{}.c2ln",
        b64(&header.to_string()),
        b64(&claims.to_string())
    );
    UnverifiedJwt::decode(&token).unwrap()
}

#[test]
fn only_rs256_and_es256_are_accepted_and_none_or_hmac_are_refused_by_name() {
    // Table: (alg, Ok(alg) or words of the refusal).
    let cases = [
        ("RS256", Ok(Alg::Rs256)),
        ("ES256", Ok(Alg::Es256)),
        ("none", Err("alg none")),
        ("NONE", Err("alg none")),
        ("HS256", Err("HMAC")),
        ("HS512", Err("HMAC")),
        ("PS256", Err("not supported")),
        ("rs256", Err("not supported")),
    ];
    for (alg, want) in cases {
        // Act
        let got = Alg::parse(alg);

        // Assert
        match (got, want) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{alg}"),
            (Err(msg), Err(words)) => assert!(msg.contains(words), "{alg}: {msg}"),
            (got, want) => panic!("{alg}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn malformed_tokens_say_which_part_is_wrong() {
    let header = b64(r#"{"alg":"RS256"}"#);
    let payload = b64(r#"{"iss":"x"}"#);
    // Table: (token, words, reason).
    let cases = [
        (format!("{header}.{payload}"), "three", "two parts"),
        (format!("{header}.{payload}.a.b"), "three", "four parts"),
        (
            format!("!!.{payload}.c2ln"),
            "header is not base64url",
            "bad header",
        ),
        (
            format!("{}.{payload}.c2ln", b64("[1]")),
            "header is not a JSON object",
            "array header",
        ),
        (
            format!("{header}.{}.c2ln", b64("null")),
            "payload is not a JSON object",
            "null payload",
        ),
        (
            format!("{header}.{payload}.!!"),
            "signature is not base64url",
            "bad signature",
        ),
        (format!("{}.{payload}.c2ln", b64("{}")), "no alg", "no alg"),
        (
            format!("{}.{payload}.c2ln", b64(r#"{"alg":"RS256","kid":7}"#)),
            "kid",
            "numeric kid",
        ),
        (
            format!("{header}.{}.c2ln", "A".repeat(20_000)),
            "longer",
            "too long",
        ),
    ];
    for (token, words, reason) in cases {
        // Act
        let err = UnverifiedJwt::decode(&token).unwrap_err();

        // Assert
        assert!(err.contains(words), "{reason}: {err}");
    }
}

#[test]
fn times_hold_within_the_skew_and_not_beyond() {
    // Arrange
    let now = 1_800_000_000;
    let at = |exp: i64, nbf: i64, iat: i64| {
        mk_jwt(
            json!({"alg": "RS256"}),
            json!({"exp": exp, "nbf": nbf, "iat": iat}),
        )
    };
    // Table: (token, holds, reason).
    let cases = [
        (at(now + 300, now - 600, now), true, "GitHub's shape"),
        (
            at(now - 59, now - 600, now - 900),
            true,
            "expired within the skew",
        ),
        (
            at(now - 60, now - 600, now - 900),
            false,
            "expired at the skew",
        ),
        (at(now + 300, now + 59, now), true, "nbf within the skew"),
        (at(now + 300, now + 61, now), false, "nbf beyond the skew"),
        (at(now + 300, now, now + 61), false, "iat beyond the skew"),
        (mk_jwt(json!({"alg": "RS256"}), json!({})), false, "no exp"),
        (
            mk_jwt(json!({"alg": "RS256"}), json!({"exp": -5})),
            false,
            "negative exp",
        ),
        (
            mk_jwt(json!({"alg": "RS256"}), json!({"exp": 1e30})),
            false,
            "huge exp",
        ),
        (
            mk_jwt(
                json!({"alg": "RS256"}),
                json!({"exp": now as f64 + 0.5 + 100.0}),
            ),
            true,
            "fractional exp",
        ),
    ];
    for (jwt, holds, reason) in cases {
        // Act
        let got = jwt.check_times(now, 60);

        // Assert
        assert_eq!(got.is_ok(), holds, "{reason}: {got:?}");
    }
}

#[test]
fn the_audience_may_be_a_string_or_an_array_holding_it() {
    let jwt = |aud| mk_jwt(json!({"alg": "RS256"}), json!({"aud": aud}));
    assert!(jwt(json!("vcm")).has_audience("vcm"));
    assert!(jwt(json!(["ari:cloud:bitbucket::workspace/x", "vcm"])).has_audience("vcm"));
    assert!(!jwt(json!("https://github.com/octo-org")).has_audience("vcm"));
    assert!(!jwt(json!(["vcmx"])).has_audience("vcm"));
    assert!(!jwt(json!(7)).has_audience("vcm"));
    assert!(!mk_jwt(json!({"alg": "RS256"}), json!({})).has_audience("vcm"));
}

#[test]
fn jwks_entries_vcm_cannot_use_are_skipped() {
    // Arrange
    let n = b64(&"\u{7f}".repeat(256));
    let short_n = b64(&"\u{7f}".repeat(128));
    let coord = b64(&"\u{1}".repeat(32));
    // Table: (entry, usable, reason).
    let cases = [
        (
            json!({"kty": "RSA", "kid": "a", "n": n, "e": "AQAB"}),
            true,
            "RSA 2048",
        ),
        (
            json!({"kty": "RSA", "n": short_n, "e": "AQAB"}),
            false,
            "RSA 1024",
        ),
        (
            json!({"kty": "RSA", "use": "enc", "n": n, "e": "AQAB"}),
            false,
            "encryption key",
        ),
        (
            json!({"kty": "RSA", "alg": "PS256", "n": n, "e": "AQAB"}),
            false,
            "other alg",
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": coord, "y": coord}),
            true,
            "P-256",
        ),
        (
            json!({"kty": "EC", "crv": "P-384", "x": coord, "y": coord}),
            false,
            "P-384",
        ),
        (
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            false,
            "symmetric key",
        ),
        (
            json!({"kty": "RSA", "n": 5, "e": "AQAB"}),
            false,
            "numeric n",
        ),
        (json!("garbage"), false, "not an object"),
    ];
    for (jwk, usable, reason) in cases {
        // Act
        let key = PublicKey::from_jwk(&jwk);

        // Assert
        assert_eq!(key.is_some(), usable, "{reason}");
    }
}

#[test]
fn jwt_shapes_are_told_apart_from_other_bearer_values() {
    assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
    assert!(
        looks_like_jwt("eyJh.eyJi."),
        "alg none has an empty signature"
    );
    assert!(!looks_like_jwt("eyJh.eyJi"));
    assert!(!looks_like_jwt("eyJh.eyJi.c2ln.x"));
    assert!(!looks_like_jwt(".eyJi.c2ln"));
    assert!(
        !looks_like_jwt("eyJh.ey+i.c2ln"),
        "standard base64 is not base64url"
    );
    assert!(!looks_like_jwt("vcm_00"));
}

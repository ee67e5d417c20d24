//! Garbage in every position of a bearer value is a 401 (`Unauthenticated`), never a panic or
//! another error kind, and the message never repeats the value.

use std::sync::{Arc, LazyLock};

use proptest::prelude::*;

use crate::auth::{Authenticator, OidcVerifier};
use crate::config::{OidcIssuerConfig, OidcRule};
use crate::domain::Role;
use crate::error::ErrorKind;
use crate::store::{SqliteStore, Store};

/// The configured issuer: a loopback port nothing listens on, so a well-formed token of it
/// fails fast with "could not be reached".
const ISSUER: &str = "http://127.0.0.1:9/oidc";

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
});

static AUTH: LazyLock<Authenticator> = LazyLock::new(|| {
    RT.block_on(async {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open("sqlite::memory:")
                .await
                .expect("an in-memory store"),
        );
        let oidc = OidcVerifier::new(&[OidcIssuerConfig {
            name: "ci".into(),
            issuer: ISSUER.into(),
            audience: "vcm".into(),
            rules: vec![OidcRule {
                name: None,
                claims: [("repository".to_owned(), "acme/web".to_owned())].into(),
                role: Role::Ci,
                team: None,
            }],
            ..OidcIssuerConfig::default()
        }])
        .expect("a verifier");
        Authenticator::new(store).with_oidc(oidc)
    })
});

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn check(header: &str) -> Result<(), TestCaseError> {
    let result = RT.block_on(AUTH.authenticate(Some(header)));
    let err = match result {
        Ok(p) => return Err(TestCaseError::fail(format!("accepted as {p}"))),
        Err(e) => e,
    };
    prop_assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{}", err);
    let msg = err.to_string();
    let value = header.trim_start_matches("Bearer ");
    prop_assert!(value.len() < 24 || !msg.contains(value), "echoed: {}", msg);
    Ok(())
}

/// One JWT part: random base64url text, or the encoding of random bytes or JSON.
fn part() -> impl Strategy<Value = String> {
    let json = prop_oneof![
        Just(r#"{"alg":"RS256","kid":"k"}"#.to_owned()),
        Just(format!(
            r#"{{"iss":"{ISSUER}","sub":"x","aud":"vcm","exp":1e999}}"#
        )),
        Just(format!(
            r#"{{"iss":"{ISSUER}","exp":18446744073709551616}}"#
        )),
        Just(r#"{"alg":"none"}"#.to_owned()),
        Just(r#"{"alg":"HS256","kid":null}"#.to_owned()),
        Just("[]".to_owned()),
        any::<i64>().prop_map(|n| format!(r#"{{"iss":"{ISSUER}","exp":{n},"nbf":{n}}}"#)),
        "\\PC{0,40}",
    ];
    prop_oneof![
        "[A-Za-z0-9_-]{0,60}",
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(|b| b64(&b)),
        json.prop_map(|j| b64(j.as_bytes())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_string_is_refused_as_unauthenticated(value in "\\PC{0,200}") {
        check(&value)?;
        check(&format!("Bearer {value}"))?;
    }

    #[test]
    fn any_three_part_value_is_refused_as_unauthenticated(
        (h, p, s) in (part(), part(), part())
    ) {
        check(&format!("Bearer {h}.{p}.{s}"))?;
    }
}

#[test]
fn a_64_kib_bearer_value_is_refused_without_decoding() {
    let huge = format!(
        "Bearer {}.{}.{}",
        "A".repeat(22_000),
        "B".repeat(22_000),
        "C".repeat(22_000)
    );
    check(&huge).unwrap();
}

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

static AUTH: LazyLock<Authenticator> = LazyLock::new(mk_auth);

/// An authenticator with the unreachable issuer configured.
fn mk_auth() -> Authenticator {
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
                pull_request_clusters: None,
            }],
            ..OidcIssuerConfig::default()
        }])
        .expect("a verifier");
        Authenticator::new(store).with_oidc(oidc)
    })
}

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

/// Collects log output.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn refused_tokens_never_reach_the_log() {
    // Arrange: a well-formed token of the configured (unreachable) issuer, so key fetching
    // fails and is logged, and a malformed one.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let header = b64(br#"{"alg":"RS256","kid":"k1"}"#);
    let claims =
        b64(format!(r#"{{"iss":"{ISSUER}","sub":"s","aud":"vcm","exp":4000000000}}"#).as_bytes());
    let signature = b64(&[7u8; 256]);
    let tokens = [
        format!("{header}.{claims}.{signature}"),
        format!("{header}.{claims}.{}", &signature[..100]),
    ];

    let auth = mk_auth(); // its own key cache, so this test's fetch is the one logged

    // Act
    let errors: Vec<String> = tracing::subscriber::with_default(subscriber, || {
        // NB: another test thread may have cached "nobody listens" for the warning's call site
        // (the process-wide subscriber filters it out); recompute it now that this one listens.
        tracing::callsite::rebuild_interest_cache();
        tokens
            .iter()
            .map(|t| {
                let r = RT.block_on(auth.authenticate(Some(&format!("Bearer {t}"))));
                r.map(|p| p.to_string()).unwrap_err().to_string()
            })
            .collect()
    });

    // Assert
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(errors[0].contains("could not be reached"), "{}", errors[0]);
    assert!(log.contains("cannot fetch OIDC signing keys"), "{log}");
    for text in [&log, &errors[0], &errors[1]] {
        assert!(!text.contains(&signature[..40]), "signature in: {text}");
        assert!(!text.contains(&claims), "payload in: {text}");
    }
}

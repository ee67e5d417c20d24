#![allow(clippy::unwrap_used)]

use super::*;
use crate::error::ErrorKind;
use crate::store::SqliteStore;

async fn mk_auth() -> (Authenticator, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
    (Authenticator::new(store.clone()), store)
}

fn bearer(secret: &TokenSecret) -> String {
    format!("Bearer {}", secret.expose())
}

#[tokio::test]
async fn a_bootstrapped_token_authenticates_as_its_principal() {
    // Arrange
    let (auth, store) = mk_auth().await;
    let secret = TokenSecret::generate();
    bootstrap_token(store.as_ref(), "dev", Role::Admin, &secret)
        .await
        .unwrap();

    // Act
    let principal = auth.authenticate(Some(&bearer(&secret))).await.unwrap();
    let lowercase = auth
        .authenticate(Some(&format!("bearer  {}", secret.expose())))
        .await
        .unwrap();

    // Assert
    let id = store.list_tokens().await.unwrap()[0].id.clone();
    assert_eq!(principal, Principal::token(&id, "dev", Role::Admin, None));
    assert_eq!(lowercase, principal);
}

#[tokio::test]
async fn bootstrap_is_idempotent_across_restarts() {
    // Arrange
    let (_, store) = mk_auth().await;
    let secret = TokenSecret::generate();

    // Act
    bootstrap_token(store.as_ref(), "dev", Role::Admin, &secret)
        .await
        .unwrap();
    bootstrap_token(store.as_ref(), "dev", Role::Admin, &secret)
        .await
        .unwrap();

    // Assert
    assert_eq!(store.list_tokens().await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_credentials_are_unauthenticated_without_echoing_the_token() {
    // Arrange
    let (auth, store) = mk_auth().await;
    let revoked = TokenSecret::generate();
    bootstrap_token(store.as_ref(), "old", Role::Ci, &revoked)
        .await
        .unwrap();
    let id = store.list_tokens().await.unwrap()[0].id.clone();
    store.revoke_token(&id, Timestamp::now()).await.unwrap();
    let expired = TokenSecret::generate();
    store
        .insert_token(&ApiToken {
            id: "t-expired".into(),
            name: "expired".into(),
            hash: expired.hash(),
            role: Role::Ci,
            team: None,
            created_at: Timestamp::UNIX_EPOCH,
            expires_at: Some(Timestamp::UNIX_EPOCH),
            revoked_at: None,
            last_used_at: None,
        })
        .await
        .unwrap();
    let unknown = TokenSecret::generate();
    // Table: (header, expected words in the message, reason).
    let cases = [
        (None, "missing bearer token", "no header"),
        (
            Some("Basic dXNlcjpwYXNz".to_owned()),
            "scheme",
            "not bearer",
        ),
        (
            Some("Bearer vcm_nothex".to_owned()),
            "malformed",
            "bad shape",
        ),
        (Some(bearer(&unknown)), "no such token", "unknown hash"),
        (Some(bearer(&revoked)), "revoked", "revoked"),
        (Some(bearer(&expired)), "expired", "expired"),
    ];

    for (header, words, reason) in cases {
        // Act
        let err = auth.authenticate(header.as_deref()).await.unwrap_err();

        // Assert
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{reason}");
        let message = err.to_string();
        assert!(message.contains(words), "{reason}: {message}");
        for secret in [&unknown, &revoked, &expired] {
            assert!(!message.contains(&secret.expose()[4..]), "{reason}");
        }
        assert!(!message.contains("nothex"), "{reason}: {message}");
    }
}

#[tokio::test]
async fn a_jwt_without_configured_issuers_is_refused_naming_what_vcm_accepts() {
    // Arrange
    let (auth, _) = mk_auth().await;
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlLmNvbSJ9.c2ln";

    // Act
    let err = auth
        .authenticate(Some(&format!("Bearer {jwt}")))
        .await
        .unwrap_err();
    let garbage = auth.authenticate(Some("Bearer hello")).await.unwrap_err();

    // Assert
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    let msg = err.to_string();
    assert!(
        msg.contains("\"https://issuer.example.com\" is not configured"),
        "{msg}"
    );
    assert!(msg.contains("vcm API tokens"), "{msg}");
    assert!(!msg.contains("c2ln"), "{msg}");
    assert!(
        garbage.to_string().contains("malformed bearer token"),
        "{garbage}"
    );
}

/// Garbage bearer values (proptest).
mod garbage;
/// JWT decoding and the claim checks.
mod jwt;

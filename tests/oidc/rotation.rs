//! Keys change: rotation is picked up from an unknown key id; a down issuer leaves cached keys
//! working and makes tokens with new key ids fail with a message that says so.

use super::*;

#[tokio::test]
async fn a_rotated_key_is_fetched_on_its_new_kid_and_the_withdrawn_one_stops_working() {
    // Arrange
    let issuer = Issuer::start().await;
    let (old, new) = (Key::rsa("2026-11-old"), Key::ec("2026-11-new"));
    issuer.publish(&[&old]);
    let vcm = Vcm::start(mk_issuers(&issuer, 1)).await;
    let claims = || github_claims(&issuer.github());
    let (before, _) = vcm.list(&old.sign(json!({}), &claims())).await;

    // Act
    issuer.publish(&[&new]);
    tokio::time::sleep(Duration::from_millis(1100)).await; // the minimum refetch interval
    let (rotated, rotated_body) = vcm.list(&new.sign(json!({}), &claims())).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (withdrawn, withdrawn_body) = vcm.list(&old.sign(json!({}), &claims())).await;

    // Assert
    assert_eq!(before, StatusCode::OK);
    assert_eq!(rotated, StatusCode::OK, "{rotated_body}");
    assert_eq!(withdrawn, StatusCode::UNAUTHORIZED, "{withdrawn_body}");
    assert!(
        message(&withdrawn_body).contains("not among the keys"),
        "{withdrawn_body}"
    );
    assert_eq!(issuer.jwks_fetches(), 3);
}

#[tokio::test]
async fn a_down_issuer_leaves_cached_keys_working_and_new_kids_could_not_be_reached() {
    // Arrange
    let issuer = Issuer::start().await;
    let cached = Key::rsa("cached");
    issuer.publish(&[&cached]);
    let vcm = Vcm::start(mk_issuers(&issuer, 1)).await;
    let claims = || github_claims(&issuer.github());
    let (warm, _) = vcm.list(&cached.sign(json!({}), &claims())).await;

    // Act
    issuer.set_down(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (still, _) = vcm.list(&cached.sign(json!({}), &claims())).await;
    let rotated = Key::rsa("rotated-while-down");
    let (fresh, fresh_body) = vcm.list(&rotated.sign(json!({}), &claims())).await;

    // Assert
    assert_eq!(warm, StatusCode::OK);
    assert_eq!(still, StatusCode::OK, "the cached key keeps working");
    assert_eq!(fresh, StatusCode::UNAUTHORIZED, "{fresh_body}");
    let msg = message(&fresh_body);
    assert!(msg.contains("could not be reached"), "{msg}");
    assert!(msg.contains("rotated-while-down"), "{msg}");
}

#[tokio::test]
async fn concurrent_tokens_with_a_new_kid_share_one_fetch() {
    // Arrange
    let issuer = Issuer::start().await;
    let (old, new) = (Key::rsa("old"), Key::rsa("new"));
    issuer.publish(&[&old]);
    let vcm = Vcm::start(mk_issuers(&issuer, 1)).await;
    let claims = || github_claims(&issuer.github());
    let (warm, _) = vcm.list(&old.sign(json!({}), &claims())).await;
    issuer.publish(&[&old, &new]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = new.sign(json!({}), &claims());

    // Act
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (http, url) = (vcm.http.clone(), format!("http://{}/v1/clusters", vcm.addr));
        let token = token.clone();
        requests.spawn(async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let statuses = requests.join_all().await;

    // Assert
    assert_eq!(warm, StatusCode::OK);
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "one fetch at warm-up, one for the new kid"
    );
}

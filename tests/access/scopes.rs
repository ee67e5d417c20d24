//! What each caller sees and may change beyond single requests: lists and bulk deletes by
//! visibility, token administration and revocation, rate limits.

use super::*;

#[tokio::test]
async fn lists_and_bulk_deletes_cover_only_what_the_caller_may_see_and_names_leak_nothing() {
    // Arrange
    let app = App::start(generous()).await;
    let (_, web_dev) = app.token("dev", Role::Developer, Some("web")).await;
    let (_, data_dev) = app.token("dev", Role::Developer, Some("data")).await;
    let (_, ci) = app.token("pipeline", Role::Ci, Some("web")).await;
    let (_, viewer) = app.token("watcher", Role::Viewer, Some("web")).await;
    for (auth, name) in [(&web_dev, "web-a"), (&ci, "web-ci"), (&data_dev, "data-a")] {
        let body = json!({"name": name, "labels": {"run": "1"}});
        let (status, _, _) = app
            .call(
                Method::POST,
                "/v1/clusters",
                Some(&bearer(auth)),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let names = |list: &Value| -> Vec<String> {
        let mut n: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };

    // Act
    let (_, _, seen_by_web) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&web_dev)), None)
        .await;
    let (_, _, seen_by_ci) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&ci)), None)
        .await;
    let (_, _, seen_by_viewer) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&viewer)), None)
        .await;
    let (taken, _, taken_body) = app
        .call(
            Method::POST,
            "/v1/clusters",
            Some(&bearer(&web_dev)),
            Some(json!({"name": "data-a"})),
        )
        .await;
    let (viewer_bulk, _, _) = app
        .call(
            Method::DELETE,
            "/v1/clusters?label=run=1",
            Some(&bearer(&viewer)),
            None,
        )
        .await;
    let (_, _, deleted_by_ci) = app
        .call(
            Method::DELETE,
            "/v1/clusters?label=run=1",
            Some(&bearer(&ci)),
            None,
        )
        .await;
    let (_, _, deleted_by_web) = app
        .call(
            Method::DELETE,
            "/v1/clusters?label=run=1",
            Some(&bearer(&web_dev)),
            None,
        )
        .await;
    let (_, _, data_after) = app
        .call(
            Method::GET,
            "/v1/clusters/data-a",
            Some(&bearer(&data_dev)),
            None,
        )
        .await;

    // Assert
    assert_eq!(names(&seen_by_web), ["web-a", "web-ci"]);
    assert_eq!(names(&seen_by_ci), ["web-ci"]);
    assert_eq!(names(&seen_by_viewer), ["web-a", "web-ci"]);
    assert_eq!(taken, StatusCode::CONFLICT);
    let msg = taken_body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("is taken") && !msg.contains("c-") && !msg.contains("token:"),
        "{msg}"
    );
    assert_eq!(viewer_bulk, StatusCode::FORBIDDEN);
    assert_eq!(
        deleted_by_ci["ids"].as_array().unwrap().len(),
        1,
        "{deleted_by_ci}"
    );
    assert_eq!(
        deleted_by_web["ids"].as_array().unwrap().len(),
        1,
        "only web-a was left to it: {deleted_by_web}"
    );
    assert_eq!(
        data_after["phase"], "Pending",
        "another team's cluster is untouched"
    );
}

#[tokio::test]
async fn a_revoked_token_is_refused_on_its_next_request_even_after_it_was_cached() {
    // Arrange
    let app = App::start(generous()).await;
    let (_, admin) = app.token("ops", Role::Admin, None).await;
    let (_, headers, made) = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&bearer(&admin)),
            Some(json!({"name": "pipeline", "role": "ci", "team": "web", "ttl": "30d"})),
        )
        .await;
    assert_eq!(headers["cache-control"], "no-store");
    let secret = made["secret"].as_str().unwrap().to_owned();
    let id = made["token"]["id"].as_str().unwrap().to_owned();
    let (before, _, _) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&secret)), None)
        .await;

    // Act
    let (revoke, _, revoked) = app
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Some(&bearer(&admin)),
            None,
        )
        .await;
    let (after, _, refusal) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&secret)), None)
        .await;
    let (_, _, listed) = app
        .call(Method::GET, "/v1/tokens", Some(&bearer(&admin)), None)
        .await;

    // Assert
    assert_eq!(before, StatusCode::OK);
    assert_eq!(revoke, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    assert_eq!(after, StatusCode::UNAUTHORIZED);
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{refusal}"
    );
    assert!(
        !listed.to_string().contains(&secret),
        "a list never shows a secret"
    );
    assert!(made["token"]["expires_at"].is_string(), "{made}");
}

#[tokio::test]
async fn the_last_admin_token_cannot_be_revoked_and_bad_token_requests_say_what_is_wrong() {
    // Arrange
    let app = App::start(generous()).await;
    let (admin_id, admin) = app.token("ops", Role::Admin, None).await;
    let auth = bearer(&admin);

    // Act
    let (last, _, last_body) = app
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{admin_id}"),
            Some(&auth),
            None,
        )
        .await;
    let (role, _, role_body) = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&auth),
            Some(json!({"name": "x", "role": "root"})),
        )
        .await;
    let (unknown, _, _) = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(&auth),
            Some(json!({"name": "x", "role": "ci", "scope": "all"})),
        )
        .await;
    let (missing, _, _) = app
        .call(Method::GET, "/v1/tokens/t-000000000000", Some(&auth), None)
        .await;

    // Assert
    assert_eq!(last, StatusCode::CONFLICT);
    assert!(
        last_body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("last active admin")
    );
    assert_eq!(role, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        role_body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin, developer, ci, viewer")
    );
    assert_eq!(unknown, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_principal_over_its_budget_gets_429_with_retry_after_and_others_do_not() {
    // Arrange
    let app = App::start(RateLimitConfig {
        principal_per_minute: 60,
        principal_burst: 5,
        address_per_minute: 60,
        address_burst: 3,
        ..RateLimitConfig::default()
    })
    .await;
    let (_, busy) = app.token("busy", Role::Ci, None).await;
    let (_, calm) = app.token("calm", Role::Ci, None).await;

    // Act
    let mut statuses = vec![];
    for _ in 0..6 {
        statuses.push(
            app.call(Method::GET, "/v1/clusters", Some(&bearer(&busy)), None)
                .await,
        );
    }
    let (calm_status, _, _) = app
        .call(Method::GET, "/v1/clusters", Some(&bearer(&calm)), None)
        .await;
    let wrong = bearer(TokenSecret::generate().expose());
    let mut guesses = vec![];
    for _ in 0..4 {
        guesses.push(
            app.call(Method::GET, "/v1/clusters", Some(&wrong), None)
                .await
                .0,
        );
    }
    let (healthz, _, _) = app.call(Method::GET, "/healthz", None, None).await;

    // Assert
    let codes: Vec<u16> = statuses.iter().map(|(s, _, _)| s.as_u16()).collect();
    assert_eq!(codes, [200, 200, 200, 200, 200, 429]);
    let (_, headers, body) = &statuses[5];
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("principal_per_minute")
    );
    assert_eq!(calm_status, StatusCode::OK);
    let guess_codes: Vec<u16> = guesses.iter().map(|s| s.as_u16()).collect();
    assert_eq!(
        guess_codes,
        [401, 401, 401, 429],
        "failed authentications spend the address budget"
    );
    assert_eq!(healthz, StatusCode::OK, "probes are never limited");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_failure_budget() {
    // Arrange: the test client on 127.0.0.1 plays the proxy.
    let app = App::start(RateLimitConfig {
        address_per_minute: 1,
        address_burst: 2,
        trusted_proxies: vec!["127.0.0.1".into()],
        ..RateLimitConfig::default()
    })
    .await;
    let wrong = bearer(TokenSecret::generate().expose());
    let from = |client: &'static str| {
        let (app, wrong) = (&app, wrong.clone());
        async move {
            app.http
                .get(format!("{}/v1/clusters", app.base))
                .header("authorization", wrong)
                .header("x-forwarded-for", format!("198.51.100.77, {client}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    // Act
    let mut guesser = vec![];
    for _ in 0..3 {
        guesser.push(from("203.0.113.5").await);
    }
    let neighbour = from("203.0.113.6").await;

    // Assert
    assert_eq!(guesser, [401, 401, 429], "one forwarded client runs out");
    assert_eq!(
        neighbour, 401,
        "another client behind the same proxy still gets an answer"
    );
}

#[tokio::test]
async fn an_authorization_header_that_is_not_utf8_is_a_401_saying_so() {
    // Arrange
    let app = App::start(generous()).await;
    let raw = reqwest::header::HeaderValue::from_bytes(b"Bearer vcm_\xff\xfe").unwrap();

    // Act
    let res = app
        .http
        .get(format!("{}/v1/clusters", app.base))
        .header("authorization", raw)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();

    // Assert
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("malformed Authorization header"), "{msg}");
}

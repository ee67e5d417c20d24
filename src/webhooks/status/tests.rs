use super::*;

#[test]
fn a_failing_status_is_retried_after_2_4_8_seconds_and_at_most_five_minutes() {
    let waits: Vec<u64> = [0, 1, 2, 7, 8, 50]
        .into_iter()
        .map(|n| backoff_after(n).as_secs())
        .collect();
    assert_eq!(waits, vec![2, 4, 8, 256, 300, 300]);
}

#[test]
fn api_urls_must_be_http_and_lose_their_trailing_slash() {
    assert_eq!(
        api_url(Some("https://ghe.example.com/api/v3/"), "").expect("valid"),
        "https://ghe.example.com/api/v3"
    );
    assert_eq!(
        api_url(None, "https://api.github.com").expect("valid"),
        "https://api.github.com"
    );
    assert!(api_url(Some("ftp://x"), "").is_err());
    assert!(api_url(Some("vcm.example.com"), "").is_err());
}

/// `[webhooks]` from TOML, as `vcm.toml` would give it.
fn config(toml: &str) -> WebhooksConfig {
    use figment::Figment;
    use figment::providers::{Format as _, Toml};
    Figment::from(Toml::string(toml))
        .extract()
        .expect("a [webhooks] section")
}

async fn refusal(toml: &str) -> String {
    let store: Arc<dyn Store> = Arc::new(
        crate::store::SqliteStore::open("sqlite::memory:")
            .await
            .expect("a store"),
    );
    match Reporter::from_config(&config(toml), store) {
        Ok(r) => panic!("{toml} was taken: {r:?}"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn a_reporting_setting_that_cannot_work_stops_the_start_naming_the_fix() {
    let cases = [
        (
            "[github]\nsecrets = [\"env:X\"]\ntoken = \"env:PATH\"\n",
            "public_url",
        ),
        (
            "public_url = \"https://vcm.example.com\"\n[github]\nsecrets = [\"env:X\"]\ntoken = \"env:PATH\"\napp_id = \"1\"\n",
            "not both",
        ),
        (
            "public_url = \"https://vcm.example.com\"\n[github]\nsecrets = [\"env:X\"]\napp_id = \"1\"\n",
            "app_id needs private_key",
        ),
        (
            "public_url = \"https://vcm.example.com\"\n[bitbucket]\nsecrets = [\"env:X\"]\ntoken = \"env:PATH\"\ncontext = \"a-build-status-key-longer-than-forty-chars\"\n",
            "1 to 40 characters",
        ),
        (
            "public_url = \"https://vcm.example.com\"\n[bitbucket]\nsecrets = [\"env:X\"]\napp_id = \"1\"\n",
            "GitHub's",
        ),
        (
            "public_url = \"https://vcm.example.com\"\n[github]\nsecrets = [\"env:X\"]\ntoken = \"env:PATH\"\ncheck_runs = true\n",
            "only Apps create check runs",
        ),
        (
            "public_url = \"vcm.example.com\"\n[bitbucket]\nsecrets = [\"env:X\"]\ntoken = \"env:PATH\"\n",
            "write https://host",
        ),
        (
            "public_url = \"https://vcm.example.com\"\n[github]\nsecrets = [\"env:X\"]\ntoken = \"env:VCM_TEST_UNSET_TOKEN\"\n",
            "VCM_TEST_UNSET_TOKEN is not set",
        ),
    ];
    for (toml, says) in cases {
        let err = refusal(toml).await;
        assert!(err.contains(says), "{toml}: {err}");
    }
}

/// A local server answering each request with the next of `answers`.
async fn answering(answers: Vec<(u16, &'static str)>) -> String {
    use axum::http::StatusCode;
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let app = axum::Router::new().fallback(move || {
        let answers = answers.clone();
        async move {
            let (code, body) = answers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .next()
                .unwrap_or((599, ""));
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT),
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn outages_and_expired_credentials_are_retried_and_refusals_are_not() {
    let url = answering(vec![
        (201, r#"{"id": 1}"#),
        (500, "Server Error"),
        (429, "rate limited"),
        (401, r#"{"message": "Bad credentials"}"#),
        (
            422,
            r#"{"message": "Validation Failed", "errors": [{"message": "description is too long (maximum is 140 characters)"}]}"#,
        ),
        (400, r#"{"type": "error", "error": {"message": "key: Ensure this value has at most 40 characters (it has 41)."}}"#),
    ])
    .await;
    let http = http_client().expect("a client");
    let mut got = Vec::new();
    for _ in 0..6 {
        let r = checked(http.get(&url).send().await, "posting").await;
        got.push(match r {
            Ok(a) => format!("ok {}", a.body["id"]),
            Err(e) => format!(
                "{} {}",
                if e.retry { "retry" } else { "refused" },
                e.message
            ),
        });
    }
    assert_eq!(got[0], "ok 1");
    assert!(got[1].starts_with("retry posting: HTTP 500"), "{}", got[1]);
    assert!(got[2].starts_with("retry posting: HTTP 429"), "{}", got[2]);
    assert!(got[3].starts_with("retry posting: HTTP 401"), "{}", got[3]);
    assert!(
        got[4].starts_with("refused posting: HTTP 422") && got[4].contains("too long"),
        "{}",
        got[4]
    );
    assert!(
        got[5].starts_with("refused posting: HTTP 400") && got[5].contains("at most 40"),
        "{}",
        got[5]
    );
    let down = checked(http.get("http://127.0.0.1:9/").send().await, "posting").await;
    assert!(down.expect_err("nothing listens").retry);
}

//! Deliveries for the webhook doors: the providers' documented payloads (`tests/data/webhooks`),
//! edited and signed here, posted to a real `vcm server --dev` with both doors open (included
//! with `#[path]`).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;
use vcm::webhooks::signature::sign;

use crate::vcm_process::Vcm;

pub const GITHUB_SECRET: &str = "It's a Secret to Everybody";
pub const OLD_GITHUB_SECRET: &str = "the secret being rotated out";
pub const BITBUCKET_SECRET: &str = "bitbucket-secret-7f3a";
pub const REPO: &str = "nimbus-labs/vcm-demo";

pub fn payload(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/webhooks/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `payload(name)` with `edit` applied (compact JSON with raw UTF-8, as GitHub sends).
pub fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&payload(name)).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// A server with both doors open (GitHub with two secrets, as during a rotation) and rules for
/// the demo repository on both providers.
pub fn server() -> (Vcm, tempfile::TempDir) {
    server_with("", "", "")
}

/// [`server`] with `webhooks` added to the `[webhooks]` section, and `github` and `bitbucket`
/// to the doors' sections (status reporting).
pub fn server_with(webhooks: &str, github: &str, bitbucket: &str) -> (Vcm, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("github-secret");
    std::fs::write(&secret_file, format!("{GITHUB_SECRET}\n")).unwrap();
    let config = dir.path().join("vcm.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[webhooks]
{webhooks}
[webhooks.github]
secrets = ["env:E2E_OLD_GITHUB_SECRET", "file:{secret}"]
{github}
[webhooks.bitbucket]
secrets = ["env:E2E_BITBUCKET_SECRET"]
{bitbucket}

[[pull_requests]]
provider = "github"
repository = "nimbus-labs/*"
team = "demo"
ttl = "2h"
labels = {{ purpose = "preview" }}

[[pull_requests]]
provider = "bitbucket"
repository = "Nimbus-Labs/vcm-demo"
team = "demo"
on_new_commit = "keep"
"#,
            secret = secret_file.display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let vcm = Vcm::start_with_env(&[
        ("VCM_CONFIG", &config),
        ("E2E_OLD_GITHUB_SECRET", OLD_GITHUB_SECRET),
        ("E2E_BITBUCKET_SECRET", BITBUCKET_SECRET),
    ]);
    (vcm, dir)
}

/// POST a delivery to a door: its status and JSON body.
pub fn deliver(vcm: &Vcm, door: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
    let url = format!("{}/v1/webhooks/{door}", vcm.addr);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut req = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

/// A GitHub delivery of `event` signed with `secret`.
pub fn github(vcm: &Vcm, event: &str, delivery: &str, secret: &str, body: Vec<u8>) -> (u16, Value) {
    let sig = sign(secret.as_bytes(), &body);
    let headers = [
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", delivery),
        ("X-Hub-Signature-256", sig.as_str()),
        ("User-Agent", "GitHub-Hookshot/6b2f1d8"),
    ];
    deliver(vcm, "github", &headers, body)
}

/// A Bitbucket delivery of `key`, signed.
pub fn bitbucket(vcm: &Vcm, key: &str, delivery: &str, body: Vec<u8>) -> (u16, Value) {
    let sig = sign(BITBUCKET_SECRET.as_bytes(), &body);
    let headers = [
        ("X-Event-Key", key),
        ("X-Request-UUID", delivery),
        ("X-Hub-Signature", sig.as_str()),
        ("X-Attempt-Number", "1"),
        ("User-Agent", "Bitbucket-Webhooks/2.0"),
    ];
    deliver(vcm, "bitbucket", &headers, body)
}

/// The live clusters of pull request `pr` (by the labels vcm gives them).
pub fn clusters_of(vcm: &Vcm, provider: &str, pr: u64) -> Vec<Value> {
    let out = vcm.cli_ok(&[
        "cluster",
        "list",
        "--label",
        &format!("provider={provider}"),
        "--label",
        &format!("pr={pr}"),
        "--output",
        "json",
    ]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["phase"] != "Deleted" && c["phase"] != "Deleting")
        .cloned()
        .collect()
}

/// Wait until `check` holds of the live clusters of `pr`.
pub fn until(
    vcm: &Vcm,
    provider: &str,
    pr: u64,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let live = clusters_of(vcm, provider, pr);
        if check(&live) {
            return live;
        }
        assert!(Instant::now() < deadline, "{what}: {live:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether an error answer's message contains `text`.
pub fn error_says(body: &Value, text: &str) -> bool {
    body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains(text))
}

pub fn sha_of(c: &Value) -> &str {
    c["labels"]["sha"].as_str().unwrap()
}

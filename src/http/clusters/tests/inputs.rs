//! Arbitrary strings in every user-given part of a request: the answer is a success or a 4xx
//! naming the field, never a 5xx (a panic would be one).
#![allow(clippy::unwrap_used)]

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

use super::*;

/// Cases per input: each is one request through the whole router.
const CASES: u32 = 128;

/// Every byte but unreserved ones as `%XX`.
fn mk_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sends the request `mk_request` builds from each generated input, all through one router;
/// a 4xx other than 404 and 409 (which depend on state) must name one of the fields.
fn mk_run<S: Strategy>(strategy: S, mk_request: impl Fn(S::Value) -> (Request<Body>, Vec<String>)) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(mk_app());
    let mut runner = TestRunner::new(Config::with_cases(CASES));
    runner
        .run(&strategy, |input| {
            let (request, fields) = mk_request(input);
            let (status, _, body) = rt.block_on(mk_call(app.clone(), request));
            prop_assert!(!status.is_server_error(), "{} {}", status, body);
            let by_state = [StatusCode::NOT_FOUND, StatusCode::CONFLICT].contains(&status);
            if status.is_client_error() && !by_state {
                let message = body["error"]["message"].as_str().unwrap_or_default();
                prop_assert!(
                    fields.iter().any(|f| message.starts_with(f.as_str())),
                    "{} names none of {:?}",
                    message,
                    fields
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn any_string_in_a_create_field_is_accepted_or_refused_naming_it() {
    let fields = prop::sample::select(vec![
        "name",
        "size",
        "kubernetes_version",
        "ttl",
        "idle_timeout",
        "host",
    ]);
    mk_run((fields, any::<String>()), |(field, value)| {
        let body = json!({ field: value });
        (
            mk_req(Method::POST, "/v1/clusters", Some(body)),
            vec![field.to_owned()],
        )
    });
}

#[test]
fn any_label_is_accepted_or_refused_naming_it() {
    mk_run((any::<String>(), any::<String>()), |(key, value)| {
        let body = json!({ "labels": { key.clone(): value } });
        (
            mk_req(Method::POST, "/v1/clusters", Some(body)),
            vec![format!("labels.{key}")],
        )
    });
}

#[test]
fn any_string_in_an_update_or_kubeconfig_field_is_accepted_or_refused_naming_it() {
    let fields = prop::sample::select(vec![
        ("PUT", "ttl"),
        ("PUT", "idle_timeout"),
        ("POST", "ttl"),
    ]);
    mk_run((fields, any::<String>()), |((method, field), value)| {
        let path = match method {
            "PUT" => "/v1/clusters/c-0000000000",
            _ => "/v1/clusters/c-0000000000/kubeconfig",
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        (
            mk_req(method, path, Some(json!({ field: value }))),
            vec![field.to_owned()],
        )
    });
}

#[test]
fn any_query_parameter_value_is_accepted_or_refused_naming_it() {
    let params = prop::sample::select(vec!["phase", "owner", "label", "limit", "cursor"]);
    let methods = prop::sample::select(vec![Method::GET, Method::DELETE]);
    mk_run(
        (methods, params, any::<String>()),
        |(method, param, value)| {
            let path = format!("/v1/clusters?{param}={}", mk_encoded(&value));
            (mk_req(method, &path, None), vec![param.to_owned()])
        },
    );
}

#[test]
fn any_idempotency_key_is_accepted_or_refused_naming_the_header() {
    // Header values are visible ASCII, spaces, tabs and obs-text bytes.
    let values = prop::collection::vec(
        prop_oneof![0x20u8..0x7f, Just(b'\t'), 0x80u8..=0xff],
        0..300,
    );
    mk_run(values, |bytes| {
        let mut request = mk_req(Method::POST, "/v1/clusters", Some(json!({})));
        if let Ok(value) = axum::http::HeaderValue::from_bytes(&bytes) {
            request.headers_mut().insert("idempotency-key", value);
        }
        (request, vec!["Idempotency-Key".to_owned()])
    });
}

#[test]
fn any_cluster_id_in_a_path_is_found_or_not_found() {
    mk_run(any::<String>(), |id| {
        let path = format!("/v1/clusters/{}/events", mk_encoded(&id));
        (mk_req(Method::GET, &path, None), vec![])
    });
}

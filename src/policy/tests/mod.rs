//! The policy engine with real regorus and real files: the shipped examples
//! (`deploy/policies/`), loading errors, hot reload, time limits and failing closed.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use super::*;
use crate::{config::policy::PolicyConfig, domain::Role};

mod engine;
mod examples;
mod reads;

/// A Monday morning, inside business hours.
const MONDAY_MORNING: &str = "2026-03-02T09:15:00Z";

fn mk_config(paths: &[PathBuf], data: Option<PathBuf>) -> PolicyConfig {
    PolicyConfig {
        paths: paths.to_vec(),
        data,
        ..PolicyConfig::default()
    }
}

/// A `token:` caller with `role` and `team` asking for `action` with body `request`.
fn mk_input(
    role: Role,
    team: Option<&str>,
    action: &str,
    request: serde_json::Value,
) -> PolicyInput {
    let principal = InputPrincipal::new("token:t-1", "tester", role, team.map(str::to_owned));
    PolicyInput::new(principal, action)
        .with_request(request)
        .at(MONDAY_MORNING)
}

/// `deploy/policies/<name>`, the shipped example.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/policies")
        .join(name)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_policy_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Policy>();
}

//! Reading what the local GitHub/Bitbucket API recorded, for the status tests (included with
//! `#[path]`).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::scm_fakes::Scm;

pub fn app_key() -> (Vec<u8>, String) {
    let path = format!(
        "{}/tests/data/webhooks/github-app-test-key.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    (std::fs::read(&path).unwrap(), path)
}

/// Wait up to `secs` for `check`; fail saying `what` and showing `show()`.
pub fn wait_for<T: std::fmt::Debug>(
    secs: u64,
    what: &str,
    show: impl Fn() -> T,
    check: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = show();
        if check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v:#?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn states(statuses: &[Value], field: &str) -> Vec<String> {
    statuses
        .iter()
        .map(|s| s[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// No earlier state after a later one: once `done` was shown, only `done` or `after` follow.
pub fn in_order(states: &[String], done: &str, after: &[&str]) -> bool {
    match states.iter().position(|s| s == done) {
        Some(i) => states[i..]
            .iter()
            .all(|s| s == done || after.contains(&s.as_str())),
        None => true,
    }
}

/// What GitHub shows for `sha`, in order, as `(state, link, name, text)`: commit statuses, or
/// the states of its check runs (the conclusion once completed).
pub fn shown(scm: &Scm, sha: &str, check_runs: bool) -> Vec<(String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    if check_runs {
        scm.check_runs(sha)
            .iter()
            .map(|b| {
                let state = b.get("conclusion").map_or_else(|| s(&b["status"]), s);
                (
                    state,
                    s(&b["details_url"]),
                    s(&b["name"]),
                    s(&b["output"]["summary"]),
                )
            })
            .collect()
    } else {
        scm.statuses(sha)
            .iter()
            .map(|b| {
                (
                    s(&b["state"]),
                    s(&b["target_url"]),
                    s(&b["context"]),
                    s(&b["description"]),
                )
            })
            .collect()
    }
}

pub fn last_state(shown: &[(String, String, String, String)]) -> Option<&str> {
    shown.last().map(|(state, ..)| state.as_str())
}

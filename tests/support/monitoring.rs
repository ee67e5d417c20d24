//! The monitoring files shipped in `deploy/` (Prometheus alert rules, the Grafana dashboard), the
//! metrics vcm promises to export, and `promtool` to check them (included with `#[path]`).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

pub const ALERTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/prometheus/vcm-alerts.yml"
);
pub const ALERT_TESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/prometheus/vcm-alerts.test.yml"
);
pub const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/vcm-dashboard.json"
);
pub const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/MONITORING.md");

/// What `GET /metrics` exports: name (histograms by their base name), type, labels. The contract
/// the dashboard, the alerts and docs/MONITORING.md are written against.
#[rustfmt::skip]
pub const EXPORTED: &[(&str, &str, &[&str])] = &[
    ("vcm_build_info",                       "gauge",     &["version"]),
    ("vcm_clusters",                         "gauge",     &["phase", "host", "size", "version"]),
    ("vcm_cluster_oldest_in_phase_seconds",  "gauge",     &["phase"]),
    ("vcm_cluster_creations_total",          "counter",   &["driver"]),
    ("vcm_cluster_ready_duration_seconds",   "histogram", &["driver", "host"]),
    ("vcm_cluster_failures_total",           "counter",   &["driver", "reason"]),
    ("vcm_cluster_deletions_total",          "counter",   &["reason"]),
    ("vcm_reconciler_queue_depth",           "gauge",     &[]),
    ("vcm_reconciler_step_duration_seconds", "histogram", &["step"]),
    ("vcm_reconciler_retries_total",         "counter",   &["step"]),
    ("vcm_host_capacity_clusters",           "gauge",     &["host"]),
    ("vcm_host_clusters",                    "gauge",     &["host"]),
    ("vcm_host_up",                          "gauge",     &["host"]),
    ("vcm_http_requests_total",              "counter",   &["door", "method", "route", "status"]),
    ("vcm_http_request_duration_seconds",    "histogram", &["door", "method", "route"]),
    ("vcm_auth_failures_total",              "counter",   &["kind"]),
    ("vcm_webhook_deliveries_total",         "counter",   &["provider", "outcome"]),
    ("vcm_status_outbox_depth",              "gauge",     &[]),
    ("vcm_status_reports_total",             "counter",   &["provider", "outcome"]),
    ("vcm_notifications_total",              "counter",   &["format", "alert", "outcome"]),
    ("vcm_notification_outbox_depth",        "gauge",     &[]),
    ("vcm_audit_queue_depth",                "gauge",     &[]),
    ("vcm_audit_write_failures_total",       "counter",   &[]),
    ("process_cpu_seconds_total",            "counter",   &[]),
    ("process_resident_memory_bytes",        "gauge",     &[]),
    ("process_virtual_memory_bytes",         "gauge",     &[]),
    ("process_open_fds",                     "gauge",     &[]),
    ("process_max_fds",                      "gauge",     &[]),
    ("process_start_time_seconds",           "gauge",     &[]),
    ("process_threads",                      "gauge",     &[]),
];

/// The exported metric names (histograms by their base name).
pub fn exported_names() -> BTreeSet<String> {
    EXPORTED.iter().map(|(n, _, _)| (*n).to_owned()).collect()
}

// === promtool ===

/// The `promtool` binary: `$VCM_PROMTOOL`, else the one `scripts/promtool.sh` builds. Panics,
/// saying how to build it, when there is none: a missing tool must fail the test, not skip it.
pub fn promtool() -> PathBuf {
    if let Some(p) = std::env::var_os("VCM_PROMTOOL") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "VCM_PROMTOOL={} is not a file", p.display());
        return p;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/promtool.sh");
    let out = Command::new(script)
        .arg("--print")
        .output()
        .expect("scripts/promtool.sh runs");
    assert!(out.status.success(), "scripts/promtool.sh --print failed");
    let dir = String::from_utf8(out.stdout).expect("a UTF-8 path");
    let bin = Path::new(dir.trim()).join("promtool");
    assert!(
        bin.is_file(),
        "no promtool at {}: build it with `make promtool` (or scripts/promtool.sh), or point \
         VCM_PROMTOOL at one",
        bin.display()
    );
    bin
}

/// Runs `promtool args…`; `Err(output)` when it fails.
pub fn run_promtool(args: &[&str]) -> Result<String, String> {
    let out = Command::new(promtool())
        .args(args)
        .output()
        .expect("promtool runs");
    let text = format!(
        "promtool {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

// === the shipped files ===

/// One PromQL expression of the dashboard: the panel's title, the target's refId, the query.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub panel_id: u64,
    pub title: String,
    pub ref_id: String,
    pub expr: String,
}

pub fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).expect("the dashboard is readable");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every panel, rows' nested panels included (a collapsed row holds its panels).
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every `targets[].expr` of the dashboard, as written (template variables unexpanded).
pub fn dashboard_queries() -> Vec<PanelQuery> {
    let d = dashboard();
    let mut out = Vec::new();
    for p in panels(&d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = t["expr"].as_str() {
                out.push(PanelQuery {
                    panel_id: p["id"].as_u64().unwrap_or_default(),
                    title: p["title"].as_str().unwrap_or_default().to_owned(),
                    ref_id: t["refId"].as_str().unwrap_or_default().to_owned(),
                    expr: expr.to_owned(),
                });
            }
        }
    }
    out
}

/// One alerting rule: its name and expression.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
    pub expr: String,
    pub annotations: serde_yaml_ng::Mapping,
}

pub fn alert_rules() -> Vec<AlertRule> {
    let text = std::fs::read_to_string(ALERTS).expect("the alert rules are readable");
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).expect("the alert rules are YAML");
    let mut out = Vec::new();
    for g in doc["groups"].as_sequence().into_iter().flatten() {
        for r in g["rules"].as_sequence().into_iter().flatten() {
            if let Some(name) = r["alert"].as_str() {
                out.push(AlertRule {
                    name: name.to_owned(),
                    expr: r["expr"]
                        .as_str()
                        .expect("every rule has an expr")
                        .to_owned(),
                    annotations: r["annotations"].as_mapping().cloned().unwrap_or_default(),
                });
            }
        }
    }
    out
}

/// The alert names `vcm-alerts.test.yml` tests.
pub fn tested_alerts() -> BTreeSet<String> {
    let text = std::fs::read_to_string(ALERT_TESTS).expect("the alert tests are readable");
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).expect("the alert tests are YAML");
    let mut out = BTreeSet::new();
    for t in doc["tests"].as_sequence().into_iter().flatten() {
        for a in t["alert_rule_test"].as_sequence().into_iter().flatten() {
            if let Some(n) = a["alertname"].as_str() {
                out.insert(n.to_owned());
            }
        }
    }
    out
}

// === PromQL ===

/// Grafana's built-in variables, with a value that keeps the query valid PromQL.
const BUILTIN_VARIABLES: &[(&str, &str)] = &[
    ("__rate_interval", "1m"),
    ("__interval", "1m"),
    ("__range", "1h"),
    ("__range_s", "3600"),
    ("__interval_ms", "60000"),
];

static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]").expect("a valid regex")
});

/// The template variables `expr` uses (`$x`, `${x}`, `${x:fmt}`, `[[x]]`).
pub fn variables(expr: &str) -> BTreeSet<String> {
    VARIABLE
        .captures_iter(expr)
        .filter_map(|c| c.get(1).or(c.get(2)).or(c.get(3)))
        .map(|m| m.as_str().to_owned())
        .collect()
}

/// `expr` with each template variable replaced by a valid value: Grafana's built-ins by a
/// duration, the dashboard's own by `values` (e.g. `host` → `h1`). `Err(name)` for a variable
/// with no value.
pub fn expand(expr: &str, values: &[(&str, &str)]) -> Result<String, String> {
    let mut missing = None;
    let out = VARIABLE.replace_all(expr, |c: &regex::Captures| {
        let name = c
            .get(1)
            .or(c.get(2))
            .or(c.get(3))
            .map_or("", |m| m.as_str());
        match BUILTIN_VARIABLES
            .iter()
            .chain(values)
            .find(|(n, _)| *n == name)
        {
            Some((_, v)) => (*v).to_owned(),
            None => {
                missing = Some(name.to_owned());
                String::new()
            }
        }
    });
    match missing {
        Some(name) => Err(name),
        None => Ok(out.into_owned()),
    }
}

static STRING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`"#).expect("a valid regex")
});
static METRIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^A-Za-z0-9_:])(vcm_[a-z0-9_]+|process_[a-z_]+)").expect("a valid regex")
});
static HISTOGRAM_SERIES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"_(bucket|sum|count)$").expect("a valid regex"));

/// The metric names `expr` reads: identifiers `vcm_…` and `process_…` outside string literals,
/// a histogram's `_bucket`, `_sum` and `_count` series by the histogram's name.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let code = STRING.replace_all(expr, "\"\"");
    METRIC
        .captures_iter(&code)
        .map(|c| HISTOGRAM_SERIES.replace(&c[1], "").into_owned())
        .collect()
}

/// Every metric name the dashboard and the alert rules read (histograms by their base name).
pub fn referenced_metric_names() -> BTreeSet<String> {
    let dashboard = dashboard_queries().into_iter().map(|q| q.expr);
    let alerts = alert_rules().into_iter().map(|r| r.expr);
    dashboard
        .chain(alerts)
        .flat_map(|e| metric_names(&e))
        .collect()
}

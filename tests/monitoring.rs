//! The monitoring files vcm ships: the Prometheus alert rules pass `promtool check rules` and
//! their unit tests (`promtool test rules`), every query of the Grafana dashboard is valid PromQL
//! (through `promtool check rules`, as recording rules), and the dashboard and the alerts read
//! only metrics vcm exports. Every alert has tests and a section in docs/MONITORING.md, whose
//! table lists every metric. promtool comes from `scripts/promtool.sh` (`make promtool`) or
//! `$VCM_PROMTOOL`; without it these tests fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/monitoring.rs"]
mod monitoring;

use std::collections::BTreeSet;

use monitoring::{
    ALERT_TESTS, ALERTS, DOCS, alert_rules, dashboard, dashboard_queries, expand, exported_names,
    metric_names, panels, referenced_metric_names, run_promtool, tested_alerts, variables,
};
use serde_json::{Value, json};

/// The values the dashboard's own template variables take in the PromQL check.
const DASHBOARD_VARIABLES: &[(&str, &str)] = &[("host", "h1"), ("driver", "local")];

#[test]
fn alert_rules_pass_promtool_check() {
    if let Err(out) = run_promtool(&["check", "rules", ALERTS]) {
        panic!("{out}");
    }
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    if let Err(out) = run_promtool(&["test", "rules", ALERT_TESTS]) {
        panic!("{out}");
    }
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    // Arrange: each query, its variables expanded, as a recording rule of a group named after
    // its panel (promtool names the group of a rule it refuses).
    let queries = dashboard_queries();
    assert!(queries.len() > 30, "only {} queries found", queries.len());
    let mut groups = Vec::new();
    for q in &queries {
        let expr = expand(&q.expr, DASHBOARD_VARIABLES).unwrap_or_else(|var| {
            panic!(
                "panel {:?} ({}): no test value for variable ${var}: {}",
                q.title, q.ref_id, q.expr
            )
        });
        groups.push(json!({
            "name": format!("panel {} {:?} target {}", q.panel_id, q.title, q.ref_id),
            "rules": [{"record": format!("dashboard:panel_{}_{}", q.panel_id, q.ref_id), "expr": expr}],
        }));
    }
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML.
    let rules = dir.path().join("dashboard-queries.yml");
    std::fs::write(&rules, json!({ "groups": groups }).to_string()).unwrap();

    // Act
    let checked = run_promtool(&["check", "rules", rules.to_str().unwrap()]);

    // Assert
    if let Err(out) = checked {
        let named: Vec<&str> = queries
            .iter()
            .filter(|q| out.contains(&format!("panel {} ", q.panel_id)))
            .map(|q| q.title.as_str())
            .collect();
        panic!("invalid PromQL in panel(s) {named:?}:\n{out}");
    }
}

#[test]
fn dashboard_and_alerts_read_only_exported_metrics() {
    let referenced = referenced_metric_names();
    let exported = exported_names();
    let unknown: Vec<_> = referenced.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "not exported by vcm (tests/support/monitoring.rs EXPORTED): {unknown:?}"
    );
    // And nothing exported goes unwatched.
    let unused: Vec<_> = exported.difference(&referenced).collect();
    assert!(
        unused.is_empty(),
        "exported but on no panel nor alert: {unused:?}"
    );
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.9, sum by (le) (rate(vcm_cluster_ready_duration_seconds_bucket{reason="vcm_not_a_metric"}[5m])))
           / on() vcm_http_request_duration_seconds_count + process_open_fds{job="vcm"} - xprocess_fake"#,
    );
    let want: BTreeSet<String> = [
        "vcm_cluster_ready_duration_seconds",
        "vcm_http_request_duration_seconds",
        "process_open_fds",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, want);
}

#[test]
fn dashboard_is_importable_with_a_datasource_and_host_and_driver_variables() {
    let d = dashboard();
    assert!(d["schemaVersion"].as_u64().unwrap() >= 39);
    assert!(d["uid"].is_string() && d["title"].is_string());
    assert!(
        d["id"].is_null(),
        "an exported dashboard's id would clash on import"
    );
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |name: &str| -> &Value {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for (name, query) in [
        ("host", "label_values(vcm_host_capacity_clusters, host)"),
        (
            "driver",
            "label_values(vcm_cluster_creations_total, driver)",
        ),
    ] {
        assert_eq!(var(name)["type"], "query");
        assert_eq!(var(name)["query"], query);
        assert_eq!(var(name)["datasource"]["uid"], "${datasource}");
    }
    let declared: BTreeSet<String> = vars
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();

    let all = panels(&d);
    let rows: Vec<&str> = all
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            "Overview",
            "Lifecycle latency",
            "Failures",
            "Capacity",
            "API",
            "Process"
        ]
    );
    let mut ids = BTreeSet::new();
    for p in all.iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel id of {title:?} repeats"
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {title:?}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {title:?}");
            for v in variables(t["expr"].as_str().unwrap()) {
                assert!(
                    v.starts_with("__") || declared.contains(&v),
                    "panel {title:?} uses ${v}, which the dashboard does not declare"
                );
            }
        }
    }
}

#[test]
fn every_alert_is_tested_and_documented() {
    let docs = std::fs::read_to_string(DOCS).unwrap();
    let tested = tested_alerts();
    let rules = alert_rules();
    assert!(rules.len() >= 10, "{} alerts", rules.len());
    for rule in &rules {
        let name = &rule.name;
        assert!(
            tested.contains(name),
            "{name} has no test in vcm-alerts.test.yml"
        );
        assert!(
            docs.contains(&format!("\n### {name}\n")),
            "docs/MONITORING.md has no section `### {name}`"
        );
        let description = rule.annotations["description"].as_str().unwrap_or_default();
        let link = format!("docs/MONITORING.md#{}", name.to_lowercase());
        assert!(
            description.contains(&link),
            "{name}'s description does not link {link}"
        );
        for key in ["summary", "runbook"] {
            assert!(
                rule.annotations.contains_key(key),
                "{name} has no {key} annotation"
            );
        }
    }
}

#[test]
fn docs_list_every_exported_metric() {
    let docs = std::fs::read_to_string(DOCS).unwrap();
    for (name, kind, labels) in monitoring::EXPORTED {
        let row = docs
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("docs/MONITORING.md's table has no row for {name}"));
        assert!(
            row.contains(&format!("| {kind} |")),
            "{name} is a {kind}: {row}"
        );
        for label in *labels {
            assert!(
                row.contains(&format!("`{label}`")),
                "{name}'s row lacks label {label}: {row}"
            );
        }
    }
}

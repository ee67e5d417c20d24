//! Rendering of API types for stdout: a table for people, JSON or YAML of the wire type for
//! scripts. Each function returns the text, ending in a newline, so it can be tested.

use comfy_table::{Table, presets::UTF8_FULL};
use jiff::Timestamp;
use serde::Serialize;

use super::OutputFormat;
use crate::api::{
    ClusterList, ClusterView, DeletedClusters, EventList, GatewayCredentialList,
    RevokedCredentials, TokenList,
};
use crate::service::TeamUsage;

/// One cluster: every field, one per row.
pub fn cluster(c: &ClusterView, format: OutputFormat) -> anyhow::Result<String> {
    structured(c, format).unwrap_or_else(|| {
        let now = Timestamp::now();
        let labels = labels_text(c);
        let rows: [(&str, String); 15] = [
            ("NAME", c.name.clone()),
            ("ID", c.id.clone()),
            ("PHASE", c.phase.clone()),
            ("MESSAGE", c.message.clone()),
            ("OWNER", c.owner.clone()),
            ("SIZE", c.size.clone()),
            ("KUBERNETES", c.kubernetes_version.clone()),
            ("HOST", c.host.clone()),
            ("LABELS", labels),
            ("AGE", age(&c.created_at, now)),
            ("EXPIRES", expires(c, now)),
            ("TTL", c.ttl.clone()),
            ("IDLE TIMEOUT", c.idle_timeout.clone().unwrap_or_else(dash)),
            ("ENDPOINT", c.endpoint.clone().unwrap_or_else(dash)),
            (
                "DELETE REASON",
                c.delete_reason.clone().unwrap_or_else(dash),
            ),
        ];
        let mut table = mk_table();
        for (key, value) in rows {
            table.add_row(vec![key.to_owned(), value]);
        }
        Ok(format!("{table}\n"))
    })
}

/// A page of clusters: one row each.
pub fn clusters(list: &ClusterList, format: OutputFormat) -> anyhow::Result<String> {
    structured(list, format).unwrap_or_else(|| {
        if list.items.is_empty() {
            return Ok("no clusters\n".to_owned());
        }
        let now = Timestamp::now();
        let mut table = mk_table();
        table.set_header(vec![
            "NAME", "ID", "PHASE", "SIZE", "AGE", "EXPIRES", "MESSAGE",
        ]);
        for c in &list.items {
            table.add_row(vec![
                c.name.clone(),
                c.id.clone(),
                c.phase.clone(),
                c.size.clone(),
                age(&c.created_at, now),
                expires(c, now),
                c.message.clone(),
            ]);
        }
        let mut text = format!("{table}\n");
        if let Some(cursor) = &list.next_cursor {
            text.push_str(&format!(
                "more clusters: --all lists every page (next cursor {cursor})\n"
            ));
        }
        Ok(text)
    })
}

/// Lifecycle events: one row each, oldest first.
pub fn events(list: &EventList, format: OutputFormat) -> anyhow::Result<String> {
    structured(list, format).unwrap_or_else(|| {
        let mut table = mk_table();
        table.set_header(vec!["AT", "KIND", "PHASE", "REASON", "MESSAGE"]);
        for e in &list.items {
            let phase = match (&e.from_phase, &e.to_phase) {
                (Some(from), Some(to)) => format!("{from} → {to}"),
                (None, Some(to)) => to.clone(),
                _ => dash(),
            };
            table.add_row(vec![
                e.at.clone(),
                e.kind.clone(),
                phase,
                e.reason.clone().unwrap_or_else(dash),
                e.message.clone(),
            ]);
        }
        Ok(format!("{table}\n"))
    })
}

/// Clusters whose deletion was requested (or, with `waited`, completed).
pub fn deleted(
    list: &DeletedClusters,
    waited: bool,
    format: OutputFormat,
) -> anyhow::Result<String> {
    structured(list, format).unwrap_or_else(|| {
        if list.ids.is_empty() {
            return Ok("no matching clusters\n".to_owned());
        }
        let verb = if waited { "deleted" } else { "deleting" };
        Ok(list
            .ids
            .iter()
            .map(|id| format!("cluster {id} {verb}\n"))
            .collect())
    })
}

/// Gateway credentials: one row each (never a secret).
pub fn credentials(list: &GatewayCredentialList, format: OutputFormat) -> anyhow::Result<String> {
    structured(list, format).unwrap_or_else(|| {
        if list.items.is_empty() {
            return Ok("no gateway credentials\n".to_owned());
        }
        let now = Timestamp::now();
        let mut table = mk_table();
        table.set_header(vec!["ID", "PRINCIPAL", "AGE", "EXPIRES", "STATE"]);
        for c in &list.items {
            let state = match &c.revoked_at {
                Some(_) => "revoked",
                None if c.expires_at.parse::<Timestamp>().is_ok_and(|e| e <= now) => "expired",
                None => "active",
            };
            table.add_row(vec![
                c.id.clone(),
                c.principal.clone(),
                age(&c.created_at, now),
                c.expires_at.clone(),
                state.to_owned(),
            ]);
        }
        Ok(format!("{table}\n"))
    })
}

/// What a revocation did.
pub fn revoked(revoked: &RevokedCredentials, format: OutputFormat) -> anyhow::Result<String> {
    structured(revoked, format)
        .unwrap_or_else(|| Ok(format!("{} credential(s) revoked\n", revoked.revoked)))
}

/// JSON or YAML of `value`; `None` for the table format.
/// Tokens: one row each (never a secret: the list has none).
pub fn tokens(list: &TokenList, format: OutputFormat) -> anyhow::Result<String> {
    structured(list, format).unwrap_or_else(|| {
        if list.items.is_empty() {
            return Ok("no tokens\n".to_owned());
        }
        let now = Timestamp::now();
        let mut table = mk_table();
        table.set_header(vec![
            "NAME",
            "ID",
            "ROLE",
            "TEAM",
            "AGE",
            "EXPIRES",
            "LAST USED",
            "STATE",
        ]);
        for t in &list.items {
            let state = match (&t.revoked_at, &t.expires_at) {
                (Some(_), _) => "revoked",
                (None, Some(e)) if e.parse::<Timestamp>().is_ok_and(|e| e <= now) => "expired",
                _ => "active",
            };
            table.add_row(vec![
                t.name.clone(),
                t.id.clone(),
                t.role.clone(),
                t.team.clone().unwrap_or_else(dash),
                age(&t.created_at, now),
                t.expires_at.clone().unwrap_or_else(|| "never".into()),
                t.last_used_at
                    .as_deref()
                    .map_or_else(|| "never".into(), |at| format!("{} ago", age(at, now))),
                state.to_owned(),
            ]);
        }
        Ok(format!("{table}\n"))
    })
}

/// A team's use against its quota: a summary line and one row per principal.
pub fn team_usage(u: &TeamUsage, format: OutputFormat) -> anyhow::Result<String> {
    structured(u, format).unwrap_or_else(|| {
        let limit = |v: Option<u64>| v.map_or_else(|| "no limit".to_owned(), |n| n.to_string());
        let mut out =
            format!(
            "team {}: {} live clusters (max {}), {:.1} TTL hours; each principal max {}; sizes {}
",
            u.team,
            u.live_clusters,
            limit(u.max_clusters),
            u.ttl_hours,
            limit(u.max_clusters_per_principal),
            u.sizes.as_ref().map_or_else(|| "any".to_owned(), |s| s.join(", "))
        );
        if !u.principals.is_empty() {
            let mut table = mk_table();
            table.set_header(vec!["PRINCIPAL", "LIVE CLUSTERS", "TTL HOURS"]);
            for p in &u.principals {
                table.add_row(vec![
                    p.subject.clone(),
                    p.live_clusters.to_string(),
                    format!("{:.1}", p.ttl_hours),
                ]);
            }
            out.push_str(&format!("{table}\n"));
        }
        Ok(out)
    })
}

fn structured<T: Serialize>(value: &T, format: OutputFormat) -> Option<anyhow::Result<String>> {
    match format {
        OutputFormat::Table => None,
        OutputFormat::Json => Some(
            serde_json::to_string_pretty(value)
                .map(|s| s + "\n")
                .map_err(Into::into),
        ),
        OutputFormat::Yaml => Some(serde_yaml_ng::to_string(value).map_err(Into::into)),
    }
}

pub(super) fn mk_table() -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL);
    table
}

fn labels_text(c: &ClusterView) -> String {
    if c.labels.is_empty() {
        return dash();
    }
    c.labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn dash() -> String {
    "-".to_owned()
}

/// How long ago `at` (RFC 3339) was, e.g. `3h4m`.
fn age(at: &str, now: Timestamp) -> String {
    match at.parse::<Timestamp>() {
        Ok(at) => human(now.duration_since(at).as_secs()),
        Err(_) => at.to_owned(),
    }
}

/// `in 1h55m`, `expired`, or `-` once the cluster is gone.
fn expires(c: &ClusterView, now: Timestamp) -> String {
    if c.deleted_at.is_some() || c.phase == "Deleted" {
        return dash();
    }
    match c.expires_at.parse::<Timestamp>() {
        Ok(at) if at > now => format!("in {}", human(at.duration_since(now).as_secs())),
        Ok(_) => "expired".to_owned(),
        Err(_) => c.expires_at.clone(),
    }
}

/// Two units at most: `42s`, `12m`, `3h4m`, `2d3h`.
fn human(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h{m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d{h}h"),
    }
}

/// The hosts with their capacity and use.
pub fn hosts(list: &crate::api::HostList, format: OutputFormat) -> anyhow::Result<String> {
    structured(list, format).unwrap_or_else(|| {
        let mut table = mk_table();
        table.set_header(vec![
            "HOST",
            "REACHABLE",
            "CLUSTERS",
            "MAX",
            "USED",
            "MESSAGE",
        ]);
        for h in &list.items {
            table.add_row(vec![
                h.name.clone(),
                if h.reachable { "yes" } else { "no" }.to_owned(),
                h.clusters.to_string(),
                h.max_clusters.map_or_else(dash, |m| m.to_string()),
                h.used_percent.map_or_else(dash, |p| format!("{p:.0}%")),
                h.message.clone(),
            ]);
        }
        Ok(format!("{table}\n"))
    })
}

/// What a cluster uses now.
pub fn cluster_usage(
    u: &crate::domain::usage::ClusterUsage,
    format: OutputFormat,
) -> anyhow::Result<String> {
    structured(u, format).unwrap_or_else(|| {
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1_048_576.0);
        let mut out = format!(
            "cluster {} on host {} ({} driver)\n",
            u.cluster, u.host, u.driver
        );
        let on = &u.on_host;
        if !on.processes.is_empty() {
            let mut table = mk_table();
            table.set_header(vec!["PROCESS", "PID", "CPU TIME", "MEMORY"]);
            for p in &on.processes {
                table.add_row(vec![
                    p.name.clone(),
                    p.pid.to_string(),
                    format!("{:.1} s", p.cpu_seconds),
                    mib(p.memory_bytes),
                ]);
            }
            table.add_row(vec![
                "total".to_owned(),
                dash(),
                on.cpu_seconds.map_or_else(dash, |s| format!("{s:.1} s")),
                on.memory_bytes.map_or_else(dash, mib),
            ]);
            out.push_str(&format!("{table}\n"));
        }
        if let Some(ns) = &on.namespace {
            let used = match (ns.cpu_used_millicores, ns.memory_used_bytes) {
                (Some(cpu), Some(mem)) => format!("{cpu}m CPU, {}", mib(mem)),
                _ => dash(),
            };
            let rows = [
                ("NAMESPACE", ns.name.clone()),
                ("PODS", format!("{} ({} running)", ns.pods, ns.running_pods)),
                (
                    "REQUESTS",
                    format!(
                        "{}m CPU, {}",
                        ns.cpu_requests_millicores,
                        mib(ns.memory_requests_bytes)
                    ),
                ),
                ("USED", used),
            ];
            let mut table = mk_table();
            for (k, v) in rows {
                table.add_row(vec![k.to_owned(), v]);
            }
            for q in &ns.quotas {
                table.add_row(vec![
                    format!("QUOTA {}", q.quota),
                    format!("{}: {} of {}", q.resource, q.used, q.hard),
                ]);
            }
            out.push_str(&format!("{table}\n"));
        }
        if let Some(objects) = &u.objects {
            let mut table = mk_table();
            table.set_header(vec!["RESOURCE", "OBJECTS"]);
            for (resource, n) in objects.iter().filter(|(_, n)| **n > 0) {
                table.add_row(vec![resource.clone(), n.to_string()]);
            }
            out.push_str(&format!("{table}\n"));
        }
        for note in &u.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        Ok(out)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mk_view() -> ClusterView {
        ClusterView {
            id: "c-abc".into(),
            name: "pr-42".into(),
            owner: "token:ci".into(),
            team: None,
            phase: "Ready".into(),
            message: "ready in 3.1s".into(),
            size: "small".into(),
            kubernetes_version: "1.36".into(),
            ttl: "2h".into(),
            idle_timeout: None,
            host: "local".into(),
            labels: [("repo".to_owned(), "web".to_owned())].into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            ready_at: None,
            expires_at: "2099-01-01T00:00:00Z".into(),
            last_activity_at: "2026-01-01T00:00:00Z".into(),
            deleted_at: None,
            endpoint: None,
            delete_reason: None,
        }
    }

    #[test]
    fn durations_read_in_two_units_at_most() {
        // Table: (seconds, text).
        let cases = [
            (42, "42s"),
            (720, "12m"),
            (7200, "2h"),
            (11_040, "3h4m"),
            (183_600, "2d3h"),
        ];
        for (secs, text) in cases {
            assert_eq!(human(secs), text, "{secs}s");
        }
    }

    #[test]
    fn a_cluster_renders_as_table_json_and_yaml() {
        let view = mk_view();

        let table = cluster(&view, OutputFormat::Table).unwrap();
        let json = cluster(&view, OutputFormat::Json).unwrap();
        let yaml = cluster(&view, OutputFormat::Yaml).unwrap();

        assert!(
            table.contains("pr-42") && table.contains("repo=web"),
            "{table}"
        );
        assert!(table.contains("in "), "{table}");
        let parsed: ClusterView = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, view);
        let parsed: ClusterView = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(parsed, view);
    }

    #[test]
    fn a_list_table_has_a_row_per_cluster_and_says_when_more_pages_exist() {
        let list = ClusterList {
            items: vec![mk_view()],
            next_cursor: Some("abc".into()),
        };

        let table = clusters(&list, OutputFormat::Table).unwrap();

        assert!(table.contains("NAME") && table.contains("c-abc"), "{table}");
        assert!(table.contains("--all"), "{table}");
    }
}

//! The configuration examples the docs show (README, docs/MONITORING.md) load as written, and
//! the notification settings are checked at load.
#![allow(clippy::unwrap_used)]

use super::tests::{load, load_err, mk_toml};
use super::*;

#[test]
fn the_readme_host_configuration_loads_as_written() {
    // Arrange: the ```toml block of the README's "Running on real host clusters" section.
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Running on real host clusters").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let file = mk_toml(block);

    // Act
    let config = load(Some(file.path()), &[], &ConfigOverrides::default());

    // Assert
    assert_eq!(config.driver, DriverKind::Vcluster);
    assert_eq!(config.hosts.len(), 2);
    assert_eq!(config.hosts[0].max_clusters, Some(25));
    assert_eq!(config.hosts[1].labels["region"], "eu-west-1");
    assert_eq!(config.vcluster.cli_timeout, Duration::from_secs(300));
    assert_eq!(
        config.vcluster.chart,
        crate::driver::vcluster::ChartSource::LocalDir("/opt/vcm/vcluster-chart".into())
    );
}

#[test]
fn the_readme_sizes_block_loads_as_written_for_both_drivers() {
    // Arrange: the ```toml block of the README's "Sizes" section.
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("### Sizes").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let file = mk_toml(block);

    // Act
    let config = load(Some(file.path()), &[], &ConfigOverrides::default());
    let local = config.sizes().unwrap();
    let vcluster = crate::config::sizes::resolve(
        &config.clusters.sizes,
        &config.clusters.default_size,
        DriverKind::Vcluster,
    )
    .unwrap();

    // Assert
    assert_eq!(local.names, vec!["ci"]);
    assert_eq!(local.local["ci"].max_requests_inflight, 100);
    assert_eq!(vcluster.vcluster["ci"].quota["count/pods"], "30");
}

#[test]
fn the_monitoring_notify_example_loads_as_written() {
    // Arrange: the ```toml block of docs/MONITORING.md's "Notifications" section.
    let doc = include_str!("../../docs/MONITORING.md");
    let section = &doc[doc.find("## Notifications").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let file = mk_toml(block);

    // Act
    let config = load(Some(file.path()), &[], &ConfigOverrides::default());

    // Assert: the example states the defaults, and two webhooks.
    let notify = &config.notify;
    assert_eq!(
        notify::NotifyConfig {
            webhooks: vec![],
            ..notify.clone()
        },
        notify::NotifyConfig::default(),
        "every key but webhooks is shown at its default"
    );
    assert_eq!(notify.webhooks.len(), 2);
    assert_eq!(notify.webhooks[0].format, notify::WebhookFormat::Json);
    assert_eq!(notify.webhooks[1].url, "env:SLACK_WEBHOOK_URL");
    assert_eq!(
        notify.webhooks[1].events,
        Some(vec![
            notify::AlertKind::ClusterFailed,
            notify::AlertKind::HostCapacity
        ])
    );
}

#[test]
fn a_notify_webhook_without_a_url_is_refused_naming_the_key() {
    let file = mk_toml("[[notify.webhooks]]\nurl = \"hooks.example.com/x\"\n");
    let err = load_err(Some(file.path()), &[]);
    assert!(err.contains("notify.webhooks[0].url"), "{err}");
    let file = mk_toml("[[notify.webhooks]]\nformat = \"slack\"\n");
    let err = load_err(Some(file.path()), &[]);
    assert!(err.contains("url"), "{err}");
}

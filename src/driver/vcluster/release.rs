//! The Helm release of a cluster, read from Helm's own storage: Secrets labelled
//! `owner=helm,name=<release>` with a `status` label per revision.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use super::DriverError;
use super::host::{Host, is_not_found};
use crate::domain::Timestamp;

/// Extra time past the CLI timeout before a `pending-*` revision counts as abandoned: the CLI
/// that wrote it has certainly been killed by then.
const PENDING_MARGIN: Duration = Duration::from_secs(60);

/// Whether the release `release` in `namespace` has a deployed revision. A `pending-install`
/// or `pending-upgrade` revision older than `cli_timeout` (plus a margin) was left by a killed
/// CLI and would make every retry fail with "another operation is in progress", so it is
/// deleted here and the install runs again.
pub async fn deployed(
    host: &Host,
    namespace: &str,
    release: &str,
    cli_timeout: Duration,
) -> Result<bool, DriverError> {
    let secrets: Api<Secret> = Api::namespaced(host.client.clone(), namespace);
    let selector = format!("owner=helm,name={release}");
    let list = secrets
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| host.error("reading the Helm release", e))?;
    let status_of = |labels: &Option<std::collections::BTreeMap<String, String>>| {
        labels
            .as_ref()
            .and_then(|l| l.get("status"))
            .cloned()
            .unwrap_or_default()
    };
    if list
        .items
        .iter()
        .any(|s| status_of(&s.metadata.labels) == "deployed")
    {
        return Ok(true);
    }
    let stale_after =
        jiff::SignedDuration::try_from(cli_timeout + PENDING_MARGIN).unwrap_or_default();
    let now = Timestamp::now();
    for s in &list.items {
        let pending = status_of(&s.metadata.labels).starts_with("pending-");
        let stale = s
            .metadata
            .creation_timestamp
            .as_ref()
            .is_some_and(|t| now.duration_since(t.0) > stale_after);
        let Some(name) = s.metadata.name.as_deref() else {
            continue;
        };
        if pending && stale {
            tracing::warn!(
                host = host.name(),
                secret = name,
                "removing an abandoned pending Helm revision"
            );
            match secrets.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(host.error("removing an abandoned Helm revision", e)),
            }
        }
    }
    Ok(false)
}

//! The two steps that run the CLI: installing a cluster's chart and deleting a cluster.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::DeleteParams;

use super::config::{ChartSource, VclusterConfig};
use super::host::{Host, is_not_found};
use super::{DriverError, cli, namespace_name, objects, release, values};
use crate::domain::Cluster;

/// How long `delete` waits for the namespace to disappear before reporting it still
/// terminating (the reconciler then retries).
const DELETE_SETTLE: Duration = Duration::from_secs(20);

/// Step 2 of `ensure`: install the chart with the CLI if its release is not deployed (after
/// creating the namespace and its isolation objects).
pub async fn install(
    config: &VclusterConfig,
    host: &Host,
    cluster: &Cluster,
    ns: &str,
) -> Result<(), DriverError> {
    let id = cluster.id.as_str();
    let size = config.size(&cluster.size).ok_or_else(|| {
        DriverError::Permanent(format!(
            "unknown size {:?} (configured: {})",
            cluster.size,
            config.sizes.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let tag = config
        .kubernetes_versions
        .get(&cluster.kubernetes_version)
        .ok_or_else(|| {
            DriverError::Permanent(format!(
                "Kubernetes {} is not offered by the pinned vcluster chart (offered: {})",
                cluster.kubernetes_version,
                config
                    .kubernetes_versions
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    // NB: with least-privilege RBAC (the Helm chart's) vcm reads the release's Secrets only
    // once `prepare` has bound it a role in the namespace; with a cluster-admin kubeconfig the
    // order would not matter, and a 403 here failed every in-cluster create.
    if objects::prepared(host, ns).await?
        && release::deployed(host, ns, id, config.cli_timeout).await?
    {
        return Ok(());
    }
    objects::prepare(host, ns, id, size, config.installation.as_deref()).await?;
    let server = host.config.server_for(id, cluster.name.as_str());
    let input = values::ValuesInput {
        release: id,
        namespace: ns,
        kubernetes_tag: tag,
        size,
        server: &server,
        node_port: host.config.uses_node_port(),
    };
    let values = values::render(&input, host.values.as_ref())?;
    let mut args = vec![
        "create".into(),
        id.to_owned(),
        format!("--namespace={ns}"),
        "--driver=helm".into(),
        "--connect=false".into(),
        "--upgrade".into(),
        "--add=false".into(),
        "--background-proxy=false".into(),
        // NB: never switch to a NodePort because the context looks like kind/minikube.
        "--expose-local=false".into(),
    ];
    match &config.chart {
        ChartSource::LocalDir(dir) => {
            args.push(format!("--local-chart-dir={}", dir.display()));
        }
        ChartSource::Repo { repo, version } => {
            args.push(format!("--chart-repo={repo}"));
            args.push(format!("--chart-version={version}"));
        }
    }
    let invocation = cli::Invocation {
        verb: "create",
        args,
        values: Some(&values),
    };
    cli::run(config, host, invocation).await?;
    tracing::info!(
        cluster.id = id,
        host = host.name(),
        "vcluster chart installed"
    );
    Ok(())
}

/// `delete` on the one host that has the namespace: the CLI, then the namespace, then wait
/// (briefly) until it is gone.
pub async fn delete_on(
    config: &VclusterConfig,
    host: &Host,
    id: &str,
    ns: &Namespace,
) -> Result<(), DriverError> {
    let name = namespace_name(id);
    let nss: Api<Namespace> = Api::all(host.client.clone());
    if ns.metadata.deletion_timestamp.is_none() {
        let invocation = cli::Invocation {
            verb: "delete",
            args: vec![
                "delete".into(),
                id.to_owned(),
                format!("--namespace={name}"),
                "--driver=helm".into(),
                "--delete-namespace".into(),
                "--ignore-not-found".into(),
                "--wait=false".into(),
            ],
            values: None,
        };
        match cli::run(config, host, invocation).await {
            Ok(_) => {}
            Err(e @ DriverError::Transient(_)) => return Err(e),
            Err(e) => tracing::warn!(
                cluster.id = id,
                host = host.name(),
                error = %e,
                "vcluster delete failed; deleting the namespace directly"
            ),
        }
        match nss.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(host.error(&format!("deleting namespace {name}"), e)),
        }
    }
    let deadline = tokio::time::Instant::now() + DELETE_SETTLE;
    loop {
        match nss.get_opt(&name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(Some(_)) => {
                return Err(DriverError::Transient(format!(
                    "namespace {name} still terminating on host {}",
                    host.name()
                )));
            }
            Err(e) => return Err(host.error(&format!("reading namespace {name}"), e)),
        }
    }
}

//! The kubeconfig Secret of a VirtualCluster: read back (which cluster, issued when, expiring
//! when) and written with server-side apply, owned by the object so it goes with it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use kube::{Resource as _, ResourceExt as _};

use super::status::{Issued, rfc3339};
use super::types::VirtualCluster;
use crate::domain::Timestamp;

/// The key holding the kubeconfig.
pub const KEY: &str = "kubeconfig";
/// The field manager vcm applies as.
pub const MANAGER: &str = "vcm";
/// Annotations saying what the Secret holds.
const CLUSTER_ID: &str = "vcm.dev/cluster-id";
const ISSUED_AT: &str = "vcm.dev/kubeconfig-issued-at";
const EXPIRES_AT: &str = "vcm.dev/kubeconfig-expires-at";

/// When the kubeconfig in the Secret was issued and expires, if it is one for `cluster_id`
/// (`None`: missing, for another cluster, or not written by vcm: write it again).
pub async fn issued(
    api: &Api<Secret>,
    name: &str,
    cluster_id: &str,
) -> kube::Result<Option<Issued>> {
    let Some(secret) = api.get_opt(name).await? else {
        return Ok(None);
    };
    Ok(read(&secret, cluster_id))
}

fn read(secret: &Secret, cluster_id: &str) -> Option<Issued> {
    let notes = secret.metadata.annotations.as_ref()?;
    let time = |key: &str| notes.get(key)?.parse::<Timestamp>().ok();
    let has_data = secret.data.as_ref().is_some_and(|d| d.contains_key(KEY));
    (has_data && notes.get(CLUSTER_ID).map(String::as_str) == Some(cluster_id)).then_some(())?;
    Some(Issued {
        at: time(ISSUED_AT)?,
        expires: time(EXPIRES_AT)?,
    })
}

/// Write `kubeconfig` into the object's Secret (created or replaced), owned by the object.
pub async fn write(
    api: &Api<Secret>,
    vc: &VirtualCluster,
    cluster_id: &str,
    kubeconfig: String,
    issued: Issued,
) -> kube::Result<()> {
    let name = &vc.spec.kubeconfig_secret_name;
    let annotations = BTreeMap::from([
        (CLUSTER_ID.to_owned(), cluster_id.to_owned()),
        (ISSUED_AT.to_owned(), rfc3339(issued.at)),
        (EXPIRES_AT.to_owned(), rfc3339(issued.expires)),
    ]);
    let labels = BTreeMap::from([("app.kubernetes.io/managed-by".to_owned(), "vcm".to_owned())]);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: vc.namespace(),
            annotations: Some(annotations),
            labels: Some(labels),
            owner_references: vc.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            KEY.to_owned(),
            ByteString(kubeconfig.into_bytes()),
        )])),
        ..Secret::default()
    };
    let mut value = serde_json::to_value(&secret).map_err(kube::Error::SerdeError)?;
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(value),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_secret(cluster: &str, data: bool) -> Secret {
        Secret {
            metadata: ObjectMeta {
                annotations: Some(BTreeMap::from([
                    (CLUSTER_ID.to_owned(), cluster.to_owned()),
                    (ISSUED_AT.to_owned(), "2026-11-30T14:00:00Z".to_owned()),
                    (EXPIRES_AT.to_owned(), "2026-11-30T15:00:00Z".to_owned()),
                ])),
                ..ObjectMeta::default()
            },
            data: data.then(|| BTreeMap::from([(KEY.to_owned(), ByteString(b"x".to_vec()))])),
            ..Secret::default()
        }
    }

    #[test]
    fn a_secret_counts_as_issued_only_for_its_own_cluster_and_with_a_kubeconfig() {
        let at: Timestamp = "2026-11-30T14:00:00Z".parse().expect("a timestamp");
        let issued = read(&mk_secret("c-1", true), "c-1").expect("vcm's own secret");
        assert_eq!(issued.at, at);
        assert!(
            read(&mk_secret("c-2", true), "c-1").is_none(),
            "another cluster's"
        );
        assert!(
            read(&mk_secret("c-1", false), "c-1").is_none(),
            "no kubeconfig key"
        );
        assert!(
            read(&Secret::default(), "c-1").is_none(),
            "not written by vcm"
        );
    }
}

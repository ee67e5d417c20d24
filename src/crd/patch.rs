//! Writes to a VirtualCluster itself: its status (through `/status`, never bumping the
//! generation) and vcm's finalizer, as JSON patches that touch nothing else.

use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};

use super::FINALIZER;
use super::controller::Error;
use super::status;
use super::types::{VirtualCluster, VirtualClusterStatus};

/// Replace the status (through `/status`, so the generation never moves) unless it says what
/// it said.
pub(super) async fn write_status(
    api: &Api<VirtualCluster>,
    vc: &VirtualCluster,
    s: VirtualClusterStatus,
) -> Result<(), Error> {
    if vc.status.as_ref().is_some_and(|old| status::same(old, &s)) {
        return Ok(());
    }
    // NB: a JSON patch `add` replaces the whole status, so fields that are no longer set go
    // (a merge patch would keep them).
    let patch = json_patch(serde_json::json!([{ "op": "add", "path": "/status", "value": s }]))?;
    api.patch_status(
        &vc.name_any(),
        &PatchParams::default(),
        &Patch::<()>::Json(patch),
    )
    .await?;
    Ok(())
}

/// Add vcm's finalizer, unless it is there.
pub(super) async fn add_finalizer(
    api: &Api<VirtualCluster>,
    vc: &VirtualCluster,
) -> Result<(), Error> {
    if vc.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let ops = match &vc.metadata.finalizers {
        None => {
            serde_json::json!([{ "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] }])
        }
        Some(_) => {
            serde_json::json!([{ "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER }])
        }
    };
    api.patch(
        &vc.name_any(),
        &PatchParams::default(),
        &Patch::<()>::Json(json_patch(ops)?),
    )
    .await?;
    Ok(())
}

/// Remove vcm's finalizer, if it is there.
pub(super) async fn remove_finalizer(
    api: &Api<VirtualCluster>,
    vc: &VirtualCluster,
) -> Result<(), Error> {
    let Some(at) = vc.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    // NB: `test` first, so a list changed meanwhile by someone else is not cut at the wrong place.
    let ops = serde_json::json!([
        { "op": "test", "path": format!("/metadata/finalizers/{at}"), "value": FINALIZER },
        { "op": "remove", "path": format!("/metadata/finalizers/{at}") },
    ]);
    api.patch(
        &vc.name_any(),
        &PatchParams::default(),
        &Patch::<()>::Json(json_patch(ops)?),
    )
    .await?;
    Ok(())
}

fn json_patch(ops: serde_json::Value) -> Result<json_patch::Patch, Error> {
    serde_json::from_value(ops).map_err(|e| Error::Kube(kube::Error::SerdeError(e)))
}

//! The konnector's finalizer `klutch.anynines.com/syncer` on the APIServiceBindings it serves:
//! added while it serves a binding, released once unbinding is done (§5.10).

use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};

use crate::api::APIServiceBinding;
use crate::api::wellknown::SYNCER_FINALIZER;

/// How often [`ensure`] re-reads a binding that changed under it before leaving the finalizer to
/// the next pass.
const CONFLICT_RETRIES: usize = 5;

/// Adds our finalizer to a binding the konnector serves, before the pass goes on to report the
/// binding's conditions. The patch carries the resourceVersion it read, so a binding written in
/// between (its status, `kubectl bind`) is a conflict: it is read again and the finalizer added to
/// the fresh copy. Other failures are retried on the next pass.
pub async fn ensure(api: &Api<APIServiceBinding>, b: &APIServiceBinding) {
    let mut fresh: Option<APIServiceBinding> = None;
    for _ in 0..CONFLICT_RETRIES {
        let b = fresh.as_ref().unwrap_or(b);
        if b.finalizers().iter().any(|f| f == SYNCER_FINALIZER) {
            return;
        }
        let mut finalizers = b.finalizers().to_vec();
        finalizers.push(SYNCER_FINALIZER.to_owned());
        let patch = serde_json::json!({ "metadata": { "finalizers": finalizers, "resourceVersion": b.resource_version() } });
        match api
            .patch(
                &b.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => match api.get_opt(&b.name_any()).await {
                Ok(Some(current)) => fresh = Some(current),
                _ => return,
            },
            Err(e) => {
                tracing::debug!(error = %e, "adding the binding finalizer failed; retrying on the next pass");
                return;
            }
        }
    }
}

/// Removes our finalizer from a binding.
pub async fn release(api: &Api<APIServiceBinding>, binding: &APIServiceBinding) {
    let Some(finalizers) = binding.metadata.finalizers.as_ref() else {
        return;
    };
    if !finalizers.iter().any(|f| f == SYNCER_FINALIZER) {
        return;
    }
    let rest: Vec<&String> = finalizers
        .iter()
        .filter(|f| *f != SYNCER_FINALIZER)
        .collect();
    let patch = serde_json::json!({ "metadata": { "finalizers": rest, "resourceVersion": binding.resource_version() } });
    if let Err(e) = api
        .patch(
            &binding.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::warn!(binding = %binding.name_any(), error = %e, "releasing the binding failed; retrying");
    }
}

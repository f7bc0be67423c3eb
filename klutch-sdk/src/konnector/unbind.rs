//! Unbinding (§5.10), driven by what the app cluster shows rather than by a finalizer on the
//! binding: a CRD the konnector materialised keeps its controller owner reference to its
//! APIServiceBinding, and once no binding with that UID exists any more the CRD is *released*:
//!
//! - every object of the CRD loses our finalizer `klutch.anynines.com/syncer` and the `bound`
//!   annotation, so it can be deleted later without a konnector;
//! - the provider copies lose `bound` (when the provider is still reachable through the kubeconfig
//!   Secret the CRD names in [`KUBECONFIG_SECRET_ANNOTATION`]), so nothing ever deletes them for a
//!   missing consumer object and a later binding adopts them instead;
//! - the CRD and every object stay: they are the app's data. Only a CRD annotated
//!   [`DELETE_ON_UNBIND_ANNOTATION`]` = "true"` (an explicit opt-in) is deleted, with its objects;
//!   the provider copies are kept even then.
//!
//! Kubernetes never garbage-collects a cluster-scoped object (the CRD) for a namespaced owner (the
//! binding), so the owner reference alone deletes nothing. No finalizer is put on bindings:
//! Klutch's konnector knows none there, so after a rollback to it a binding with ours would hang
//! in deletion. Earlier versions put `klutch.anynines.com/syncer` on bindings; [`release_binding`]
//! removes it.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt as _;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};

use super::connection::Shared;
use super::kubeconfig;
use crate::api::wellknown::{BOUND_ANNOTATION, GROUP, SYNCER_FINALIZER};
use crate::api::{APIServiceBinding, APIServiceExport, APIServiceNamespace};
use crate::sync::naming::NamespaceMap;
use crate::sync::placement::{Placer, WatchScope};

/// Annotation the konnector puts on each CRD it materialises: `<namespace>/<name>` of the
/// binding's kubeconfig Secret, so that the provider copies can still be released after the
/// binding is gone.
pub const KUBECONFIG_SECRET_ANNOTATION: &str = "klutch.anynines.com/kubeconfig-secret";

/// Opt-in, set by a user on a bound CRD: `"true"` makes unbinding delete the CRD and with it
/// every object of its kind in the app cluster. Without it (the default) unbinding keeps both.
/// Provider copies are never deleted by unbinding.
pub const DELETE_ON_UNBIND_ANNOTATION: &str = "klutch.anynines.com/delete-on-unbind";

/// What failed while releasing a CRD.
#[derive(Debug, thiserror::Error)]
#[error("unbind {crd}: {operation}")]
pub struct Error {
    /// The CRD.
    pub crd: String,
    /// What was being done.
    pub operation: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The owner reference of `crd` to an APIServiceBinding, if it has one.
pub fn binding_owner(crd: &CustomResourceDefinition) -> Option<&OwnerReference> {
    crd.owner_references()
        .iter()
        .find(|r| r.api_version.split('/').next() == Some(GROUP) && r.kind == "APIServiceBinding")
}

/// CRDs already released by this process, by (CRD UID, former owner UID).
#[derive(Debug, Default)]
pub struct Released(HashSet<(String, String)>);

/// Releases every CRD whose owning binding is gone (not among `bindings`). Returns whether
/// anything was changed, in which case the caller should look again soon: a sync context of the
/// binding may still have been stopping.
pub async fn sweep(
    shared: &Arc<Shared>,
    bindings: &[Arc<APIServiceBinding>],
    released: &mut Released,
) -> bool {
    let live: BTreeSet<&str> = bindings
        .iter()
        .filter_map(|b| b.metadata.uid.as_deref())
        .collect();
    let crds: Api<CustomResourceDefinition> = Api::all(shared.consumer.clone());
    let list = match crds.list_metadata(&ListParams::default()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!(error = %e, "listing CRDs for unbinding failed; retrying on the next pass");
            return false;
        }
    };
    let candidates: Vec<_> = list
        .into_iter()
        .filter_map(|meta| {
            let owner = meta
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|r| {
                    r.api_version.split('/').next() == Some(GROUP) && r.kind == "APIServiceBinding"
                })?
                .clone();
            let key = (
                meta.metadata.uid.clone().unwrap_or_default(),
                owner.uid.clone(),
            );
            (!live.contains(owner.uid.as_str()) && !released.0.contains(&key))
                .then_some((meta, owner, key))
        })
        .collect();
    if candidates.is_empty() {
        return false;
    }
    // The cache said these bindings are gone; the API server must agree before anything is
    // released (a cache is never the only reason to let go of an app's objects).
    let existing: BTreeSet<String> = match Api::<APIServiceBinding>::all(shared.consumer.clone())
        .list_metadata(&ListParams::default())
        .await
    {
        Ok(l) => l.items.into_iter().filter_map(|b| b.metadata.uid).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "listing bindings for unbinding failed; retrying on the next pass");
            return false;
        }
    };
    let mut changed = false;
    for (meta, owner, key) in candidates {
        if existing.contains(&owner.uid) {
            continue;
        }
        let name = meta.name_any();
        match release(shared, &name, &owner.uid).await {
            Ok(0) => {
                released.0.insert(key);
            }
            Ok(_) => changed = true,
            Err(e) => {
                tracing::warn!(error = %crate::runtime::report::error_chain(&e), "unbinding failed; retrying");
                changed = true;
            }
        }
    }
    changed
}

/// Releases CRD `name` if its owner is still the binding with UID `owner_uid`; the number of
/// objects changed (0 once all is released).
async fn release(shared: &Shared, name: &str, owner_uid: &str) -> Result<usize> {
    let err = |operation: &str| {
        let crd = name.to_owned();
        let operation = operation.to_owned();
        move |source| Error {
            crd,
            operation,
            source,
        }
    };
    let crds: Api<CustomResourceDefinition> = Api::all(shared.consumer.clone());
    let Some(crd) = crds.get_opt(name).await.map_err(err("read the CRD"))? else {
        return Ok(0);
    };
    // Taken over by a new binding of the same name meanwhile: nothing to release.
    if binding_owner(&crd).is_none_or(|o| o.uid != owner_uid) {
        return Ok(0);
    }
    let Some(version) = crd.spec.versions.iter().find(|v| v.served) else {
        return Ok(0);
    };
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&crd.spec.group, &version.name, &crd.spec.names.kind),
        &crd.spec.names.plural,
    );
    let mut changed = release_consumer_objects(shared, &ar)
        .await
        .map_err(err("release the app-cluster objects"))?;
    changed += unmark_provider_copies(shared, &crd, &ar).await?;
    let opted_in = crd
        .annotations()
        .get(DELETE_ON_UNBIND_ANNOTATION)
        .is_some_and(|v| v == "true");
    if opted_in && changed == 0 {
        tracing::info!(crd = %name, "unbound; deleting the CRD and its objects as its {DELETE_ON_UNBIND_ANNOTATION} annotation asks");
        match crds.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(err("delete the CRD (opted in)")(e)),
        }
    } else if changed > 0 {
        tracing::info!(crd = %name, objects = changed, "unbound: objects released, the CRD, its objects and the provider copies kept");
    }
    Ok(changed)
}

/// Drops our finalizer and `bound` from every object of `ar` in the app cluster.
async fn release_consumer_objects(shared: &Shared, ar: &ApiResource) -> Result<usize, kube::Error> {
    let all: Api<DynamicObject> = Api::all_with(shared.consumer.clone(), ar);
    let objects = match all.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut changed = 0;
    for o in objects {
        let finalized = o.finalizers().iter().any(|f| f == SYNCER_FINALIZER);
        let bound = o.annotations().contains_key(BOUND_ANNOTATION);
        if !finalized && !bound {
            continue;
        }
        let rest: Vec<&String> = o
            .finalizers()
            .iter()
            .filter(|f| *f != SYNCER_FINALIZER)
            .collect();
        let patch = serde_json::json!({ "metadata": {
            "finalizers": rest,
            "annotations": { BOUND_ANNOTATION: null },
            "resourceVersion": o.resource_version(),
        } });
        let api: Api<DynamicObject> = match o.namespace() {
            Some(ns) => Api::namespaced_with(shared.consumer.clone(), &ns, ar),
            None => Api::all_with(shared.consumer.clone(), ar),
        };
        match api
            .patch(
                &o.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => changed += 1,
            // Gone, or changed meanwhile: the next pass looks again.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(kube::Error::Api(s)) if s.code == 409 => changed += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(changed)
}

/// Removes `bound` from this consumer's provider copies, found where the export's placement puts
/// them (cluster-scoped copies too), or in the service namespaces when the export is gone. Without a readable kubeconfig Secret (or provider) there is nothing it can do; the
/// copies then keep `bound`, which only matters if the same app cluster binds the API again.
async fn unmark_provider_copies(
    shared: &Shared,
    crd: &CustomResourceDefinition,
    ar: &ApiResource,
) -> Result<usize> {
    let name = crd.name_any();
    let Some((secret_ns, secret_name)) = crd
        .annotations()
        .get(KUBECONFIG_SECRET_ANNOTATION)
        .and_then(|v| v.split_once('/'))
    else {
        tracing::info!(crd = %name, "no kubeconfig Secret recorded on the CRD; provider copies keep their bound annotation");
        return Ok(0);
    };
    let secret = match Api::<Secret>::namespaced(shared.consumer.clone(), secret_ns)
        .get_opt(secret_name)
        .await
    {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::info!(crd = %name, secret = %format!("{secret_ns}/{secret_name}"), "kubeconfig Secret gone; provider copies keep their bound annotation");
            return Ok(0);
        }
        Err(source) => {
            return Err(Error {
                crd: name,
                operation: "read the kubeconfig Secret".into(),
                source,
            });
        }
    };
    let Ok((bytes, provider_ns)) = kubeconfig::validate(&secret, "kubeconfig") else {
        tracing::info!(crd = %name, "kubeconfig Secret invalid; provider copies keep their bound annotation");
        return Ok(0);
    };
    let client = match kubeconfig::client(&bytes, (secret_ns, secret_name), &shared.metrics).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(crd = %name, error = %e, "no provider client; provider copies keep their bound annotation");
            return Ok(0);
        }
    };
    let err = |operation: String| {
        let crd = name.clone();
        move |source| Error {
            crd,
            operation,
            source,
        }
    };
    let mappings: Vec<APIServiceNamespace> =
        Api::<APIServiceNamespace>::namespaced(client.clone(), &provider_ns)
            .list(&ListParams::default())
            .await
            .map_err(err("list APIServiceNamespaces".into()))?
            .items;
    let map = NamespaceMap::from_api_service_namespaces(mappings.iter());
    // Where the copies are, and which are this consumer's: as the sync context placed them (the
    // export's placement); without the export, the service namespaces.
    let export = Api::<APIServiceExport>::namespaced(client.clone(), &provider_ns)
        .get_opt(&name)
        .await
        .map_err(err("read the APIServiceExport".into()))?;
    let placer = export.map(|e| Placer {
        placement: shared.placement.placement(&e),
        cluster_ns: provider_ns.clone(),
        cluster_ns_uid: None,
    });
    let scopes: BTreeSet<WatchScope> = match &placer {
        Some(placer) => placer.watch_scopes(&map),
        None => mappings
            .iter()
            .filter_map(|m| m.status.as_ref()?.namespace.clone())
            .map(WatchScope::Namespace)
            .collect(),
    };
    let unbound = serde_json::json!({ "metadata": { "annotations": { BOUND_ANNOTATION: null } } });
    let mut changed = 0;
    for scope in scopes {
        let list_api: Api<DynamicObject> = match &scope {
            WatchScope::Cluster => Api::all_with(client.clone(), ar),
            WatchScope::Namespace(ns) => Api::namespaced_with(client.clone(), ns, ar),
        };
        let objects = match list_api.list(&ListParams::default()).await {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 403 => continue,
            Err(e) => return Err(err(format!("list provider copies ({scope:?})"))(e)),
        };
        for o in objects {
            let ours = placer
                .as_ref()
                .is_none_or(|p| p.consumer_key(&o.metadata, &map).is_some());
            if !ours || !crate::sync::copy::is_bound(&o) {
                continue;
            }
            let api: Api<DynamicObject> = match o.namespace() {
                Some(ns) => Api::namespaced_with(client.clone(), &ns, ar),
                None => Api::all_with(client.clone(), ar),
            };
            match api
                .patch(
                    &o.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&unbound),
                )
                .await
            {
                Ok(_) => changed += 1,
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    return Err(err(format!("unmark provider copy {}", o.name_any()))(e));
                }
            }
        }
    }
    Ok(changed)
}

/// Removes the finalizer earlier versions of this konnector put on bindings, so that no binding
/// carries a finalizer Klutch's konnector does not know (§5.10).
pub async fn release_binding(api: &Api<APIServiceBinding>, binding: &APIServiceBinding) {
    if !binding.finalizers().iter().any(|f| f == SYNCER_FINALIZER) {
        return;
    }
    let rest: Vec<&String> = binding
        .finalizers()
        .iter()
        .filter(|f| *f != SYNCER_FINALIZER)
        .collect();
    let patch = serde_json::json!({ "metadata": { "finalizers": rest, "resourceVersion": binding.resource_version() } });
    match api
        .patch(
            &binding.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(binding = %binding.name_any(), "removed the finalizer an earlier konnector put on the binding")
        }
        Err(e) => {
            tracing::debug!(binding = %binding.name_any(), error = %e, "removing the legacy binding finalizer failed; retrying on the next pass")
        }
    }
}

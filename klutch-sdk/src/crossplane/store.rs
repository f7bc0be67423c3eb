//! Writing managed resources back: server-side apply of the metadata the reconciler owns
//! (the [owned annotations](super::Settings::owned_annotations) and the finalizer) and of the
//! status subresource, with the field manager of the provider's [`Settings`].
//! Applying a field
//! set removes what the manager applied before and no longer sends, and leaves everyone
//! else's fields alone (other finalizers, user annotations), so no write races another
//! controller. Every call is a "write-ahead": callers persist ids before the next external
//! call.

use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value, json};

use super::managed::Managed;
use super::meta::FINALIZER;
use super::settings::Settings;

/// A failed write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Applying metadata failed.
    #[error("cannot update managed resource {name}")]
    Metadata {
        /// The object.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// Applying the status failed.
    #[error("cannot update managed resource status of {name}")]
    Status {
        /// The object.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// Reading the object failed.
    #[error("cannot get managed resource {name}")]
    Get {
        /// The object.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
}

fn header<K: Managed>(_obj: &K) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("apiVersion".into(), K::api_version(&()).into());
    m.insert("kind".into(), K::kind(&()).into());
    m
}

/// True when the object carries the managed-resource finalizer.
pub fn has_finalizer<K: Managed>(obj: &K) -> bool {
    obj.meta()
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// Applies the owned annotations present on `obj` and the finalizer (when `finalizer`),
/// and updates `obj` with the answer.
pub async fn apply_metadata<K: Managed>(
    settings: &Settings,
    api: &Api<K>,
    obj: &mut K,
    finalizer: bool,
) -> Result<(), StoreError> {
    let name = obj.meta().name.clone().unwrap_or_default();
    let annotations: Map<String, Value> = obj
        .meta()
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| settings.owns_annotation(k))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut body = header(obj);
    let finalizers: Vec<&str> = if finalizer { vec![FINALIZER] } else { vec![] };
    body.insert(
        "metadata".into(),
        json!({"name": name, "annotations": annotations, "finalizers": finalizers}),
    );
    let out = api
        .patch(
            &name,
            &PatchParams::apply(&settings.field_manager).force(),
            &Patch::Apply(Value::Object(body)),
        )
        .await
        .map_err(|source| StoreError::Metadata {
            name: name.clone(),
            source,
        })?;
    *obj.meta_mut() = out.meta().clone();
    Ok(())
}

/// Applies `obj`'s status.
pub async fn apply_status<K: Managed>(
    settings: &Settings,
    api: &Api<K>,
    obj: &K,
) -> Result<(), StoreError> {
    let name = obj.meta().name.clone().unwrap_or_default();
    let mut body = header(obj);
    body.insert("metadata".into(), json!({"name": name}));
    body.insert(
        "status".into(),
        serde_json::to_value(obj.status().cloned().unwrap_or_default()).unwrap_or(json!({})),
    );
    api.patch_status(
        &name,
        &PatchParams::apply(&settings.field_manager).force(),
        &Patch::Apply(Value::Object(body)),
    )
    .await
    .map_err(|source| StoreError::Status { name, source })?;
    Ok(())
}

/// Reads the object from the API server (not a cache), `None` when it is gone.
pub async fn get_fresh<K: Managed>(api: &Api<K>, name: &str) -> Result<Option<K>, StoreError> {
    api.get_opt(name).await.map_err(|source| StoreError::Get {
        name: name.to_owned(),
        source,
    })
}

//! Connection details: published to the Secret named by
//! `writeConnectionSecretToRef`, of type `connection.crossplane.io/v1alpha1`, controlled by the
//! managed resource, and removed on final deletion. Values are applied key by key, so a
//! deleted Secret or key is restored on the next Observe.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Map, Value, json};

use super::api::SecretReference;
use super::managed::Managed;
use super::meta::CONNECTION_SECRET_TYPE;

/// A failed publication.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Writing the Secret failed.
    #[error("cannot publish connection details to Secret {namespace}/{name}")]
    Publish {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// The Secret exists and is controlled by another object.
    #[error(
        "cannot publish connection details to Secret {namespace}/{name}: it is controlled by another object"
    )]
    NotControlled {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// Deleting the Secret failed.
    #[error("cannot unpublish connection details from Secret {namespace}/{name}")]
    Unpublish {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
}

fn controlled_by<K: Managed>(secret: &Secret, owner: &K) -> Option<bool> {
    let uid = owner.meta().uid.as_deref()?;
    let refs = secret.metadata.owner_references.as_ref()?;
    refs.iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid == uid)
}

/// Writes `details` into the connection Secret of `owner` (a no-op without
/// `writeConnectionSecretToRef` or without details), as `field_manager`.
pub async fn publish<K: Managed>(
    client: &kube::Client,
    field_manager: &str,
    owner: &K,
    details: &BTreeMap<String, String>,
) -> Result<(), ConnectionError> {
    let Some(SecretReference { name, namespace }) =
        owner.resource_spec().write_connection_secret_to_ref.clone()
    else {
        return Ok(());
    };
    if details.is_empty() {
        return Ok(());
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    if let Ok(Some(existing)) = api.get_opt(&name).await
        && controlled_by(&existing, owner) == Some(false)
    {
        return Err(ConnectionError::NotControlled { namespace, name });
    }
    let data: Map<String, Value> = details
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    let owner_ref = owner.controller_owner_ref(&());
    let body = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": owner_ref.into_iter().collect::<Vec<_>>()},
        "type": CONNECTION_SECRET_TYPE,
        "data": data,
    });
    api.patch(
        &name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(|source| ConnectionError::Publish {
        namespace: namespace.clone(),
        name: name.clone(),
        source,
    })?;
    Ok(())
}

/// Deletes the connection Secret if `owner` controls it.
pub async fn unpublish<K: Managed>(
    client: &kube::Client,
    owner: &K,
) -> Result<(), ConnectionError> {
    let Some(SecretReference { name, namespace }) =
        owner.resource_spec().write_connection_secret_to_ref.clone()
    else {
        return Ok(());
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let err = |source| ConnectionError::Unpublish {
        namespace: namespace.clone(),
        name: name.clone(),
        source,
    };
    match api.get_opt(&name).await.map_err(err)? {
        Some(s) if controlled_by(&s, owner) == Some(true) => {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                Err(e) => Err(err(e)),
            }
        }
        _ => Ok(()),
    }
}

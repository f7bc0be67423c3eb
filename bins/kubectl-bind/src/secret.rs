//! The provider kubeconfig Secret in `klutch-bind` (spec §6.2 step 6): reuse the Secret whose
//! kubeconfig points at the same server and namespace, else create `kubeconfig-<random>`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use klutch_sdk::api::wellknown::{
    CONSUMER_KUBECONFIG_PREFIX, CONSUMER_NAMESPACE, KUBECONFIG_SECRET_KEY,
};
use kube::api::{Api, ListParams, PostParams};

use crate::error::{Error, Result};
use crate::io::Io;
use crate::kubeconfig::server_and_namespace;
use crate::undo::Undo;

/// Label on the Secrets `kubectl bind` creates.
pub const PROVIDER_KUBECONFIG_LABEL: &str = "klutch.anynines.com/provider-kubeconfig";

/// The first Secret (in the order given) whose `kubeconfig` has this server and namespace.
pub fn choose<'a>(
    existing: &'a [Secret],
    server: &str,
    namespace: Option<&str>,
) -> Option<&'a Secret> {
    existing.iter().find(|secret| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(KUBECONFIG_SECRET_KEY))
            .and_then(|bytes| server_and_namespace(&bytes.0).ok())
            .is_some_and(|(s, ns)| s == server && ns.as_deref() == namespace)
    })
}

fn host_of(server: &str) -> String {
    url::Url::parse(server)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| server.to_string())
}

/// What [`ensure`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ensured {
    /// The Secret's name.
    pub name: String,
    /// Whether it was created (else updated).
    pub created: bool,
}

/// Stores the kubeconfig: updates the matching Secret's data or creates a new one.
pub async fn ensure(
    io: &mut Io,
    client: &kube::Client,
    kubeconfig: &[u8],
    undo: &mut Undo,
) -> Result<Ensured> {
    let (server, namespace) = server_and_namespace(kubeconfig)?;
    let namespace_text = namespace.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), CONSUMER_NAMESPACE);
    let existing = secrets
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("list Secrets in klutch-bind"))?;
    let data = BTreeMap::from([(
        KUBECONFIG_SECRET_KEY.to_string(),
        ByteString(kubeconfig.to_vec()),
    )]);
    if let Some(found) = choose(&existing.items, &server, namespace.as_deref()) {
        let name = found.metadata.name.clone().unwrap_or_default();
        let mut updated = found.clone();
        updated.data = Some(data);
        secrets
            .replace(&name, &PostParams::default(), &updated)
            .await
            .map_err(Error::kube(format!("update Secret klutch-bind/{name}")))?;
        io.progress(format!(
            "🔒 Updated secret {CONSUMER_NAMESPACE}/{name} for host {}, namespace {namespace_text}",
            host_of(&server)
        ));
        return Ok(Ensured {
            name,
            created: false,
        });
    }
    let secret = Secret {
        metadata: ObjectMeta {
            generate_name: Some(CONSUMER_KUBECONFIG_PREFIX.into()),
            namespace: Some(CONSUMER_NAMESPACE.into()),
            labels: Some(BTreeMap::from([(
                PROVIDER_KUBECONFIG_LABEL.to_string(),
                "true".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    };
    let created = secrets
        .create(&PostParams::default(), &secret)
        .await
        .map_err(Error::kube("create the kubeconfig Secret in klutch-bind"))?;
    let name = created.metadata.name.unwrap_or_default();
    undo.created(
        kube::api::ApiResource::erase::<Secret>(&()),
        Some(CONSUMER_NAMESPACE),
        &name,
    );
    io.progress(format!(
        "🔒 Created secret {CONSUMER_NAMESPACE}/{name} for host {}, namespace {namespace_text}",
        host_of(&server)
    ));
    Ok(Ensured {
        name,
        created: true,
    })
}

/// Reads the kubeconfig from a Secret (key `kubeconfig`).
pub async fn read(client: &kube::Client, namespace: &str, name: &str) -> Result<Vec<u8>> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get(name)
        .await
        .map_err(Error::kube(format!("read Secret {namespace}/{name}")))?;
    secret
        .data
        .and_then(|mut d| d.remove(KUBECONFIG_SECRET_KEY))
        .map(|b| b.0)
        .ok_or_else(|| Error::Kubeconfig {
            what: format!("Secret {namespace}/{name}"),
            reason: format!("has no key {KUBECONFIG_SECRET_KEY:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(server: &str, namespace: &str) -> Vec<u8> {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: default\n  cluster: {{server: {server}}}\ncontexts:\n- name: default\n  context: {{cluster: default, user: default, namespace: {namespace}}}\nusers:\n- name: default\n  user: {{token: t}}\ncurrent-context: default\n"
        )
        .into_bytes()
    }

    fn secret(name: &str, data: Option<Vec<u8>>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: data
                .map(|d| BTreeMap::from([(KUBECONFIG_SECRET_KEY.to_string(), ByteString(d))])),
            ..Secret::default()
        }
    }

    #[test]
    fn the_first_secret_with_the_same_server_and_namespace_is_reused() {
        let existing = vec![
            secret("unrelated", None),
            secret("garbage", Some(b"not yaml: [".to_vec())),
            secret("other-ns", Some(kubeconfig("https://p:6443", "cluster-b"))),
            secret(
                "kubeconfig-a",
                Some(kubeconfig("https://p:6443", "cluster-a")),
            ),
            secret(
                "kubeconfig-z",
                Some(kubeconfig("https://p:6443", "cluster-a")),
            ),
        ];
        let found = choose(&existing, "https://p:6443", Some("cluster-a")).unwrap();
        assert_eq!(found.metadata.name.as_deref(), Some("kubeconfig-a"));
        assert!(choose(&existing, "https://other:6443", Some("cluster-a")).is_none());
        assert!(choose(&existing, "https://p:6443", None).is_none());
        assert_eq!(host_of("https://p.example.com:6443"), "p.example.com");
    }
}

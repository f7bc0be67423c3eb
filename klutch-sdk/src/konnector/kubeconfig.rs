//! Provider kubeconfigs: parsing the bytes of a binding's Secret into a client and the provider
//! namespace (the current context's namespace, which MUST be set in default mode).

use k8s_openapi::api::core::v1::Secret;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why a kubeconfig Secret cannot be used. The messages become binding conditions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Secret has no such key.
    #[error("kubeconfig secret {namespace}/{name} has no key {key:?}")]
    MissingKey {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The key.
        key: String,
    },
    /// The bytes are not a kubeconfig.
    #[error("kubeconfig secret {namespace}/{name}: cannot parse the kubeconfig")]
    Parse {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The parse error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No current context, or it names a context that does not exist.
    #[error("kubeconfig secret {namespace}/{name}: no usable current context")]
    NoContext {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// The current context has no namespace (the provider namespace).
    #[error("kubeconfig secret {namespace}/{name}: the current context has no namespace")]
    NoNamespace {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
    },
    /// Building a client from the kubeconfig failed.
    #[error("kubeconfig secret {namespace}/{name}: cannot build a client")]
    Client {
        /// Secret namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// The error.
        #[source]
        source: kube::config::KubeconfigError,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The raw kubeconfig bytes of `secret[key]`, validated: parsable, with a current context that
/// names a namespace. Returns the bytes and that namespace.
pub fn validate(secret: &Secret, key: &str) -> Result<(Vec<u8>, String)> {
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let name = secret.metadata.name.clone().unwrap_or_default();
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .ok_or_else(|| Error::MissingKey {
            namespace: namespace.clone(),
            name: name.clone(),
            key: key.to_owned(),
        })?;
    let text = String::from_utf8_lossy(&bytes);
    let kubeconfig = Kubeconfig::from_yaml(&text).map_err(|source| Error::Parse {
        namespace: namespace.clone(),
        name: name.clone(),
        source,
    })?;
    let ns = context_namespace(&kubeconfig).map_err(|no_context| {
        if no_context {
            Error::NoContext {
                namespace: namespace.clone(),
                name: name.clone(),
            }
        } else {
            Error::NoNamespace {
                namespace: namespace.clone(),
                name: name.clone(),
            }
        }
    })?;
    Ok((bytes, ns))
}

/// The current context's namespace; `Err(true)` without a usable context, `Err(false)` without a
/// namespace.
fn context_namespace(kubeconfig: &Kubeconfig) -> std::result::Result<String, bool> {
    let current = kubeconfig.current_context.as_deref().ok_or(true)?;
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
        .ok_or(true)?;
    context
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(false)
}

/// A client for validated kubeconfig bytes, with user agent `konnector`.
pub async fn client(
    bytes: &[u8],
    secret: (&str, &str),
    metrics: &std::sync::Arc<super::metrics::Metrics>,
) -> Result<kube::Client> {
    let (namespace, name) = (secret.0.to_owned(), secret.1.to_owned());
    let kubeconfig =
        Kubeconfig::from_yaml(&String::from_utf8_lossy(bytes)).map_err(|source| Error::Parse {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| Error::Client {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
    super::client::counted(config, "provider", metrics).map_err(|source| Error::Client {
        namespace,
        name,
        source: kube::config::KubeconfigError::LoadContext(source.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(kubeconfig: &str) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("kubeconfig-abc".into()),
                namespace: Some("klutch-bind".into()),
                ..Default::default()
            },
            data: Some(
                [(
                    "kubeconfig".to_string(),
                    ByteString(kubeconfig.as_bytes().to_vec()),
                )]
                .into(),
            ),
            ..Default::default()
        }
    }

    const GOOD: &str = "apiVersion: v1\nkind: Config\nclusters: [{name: p, cluster: {server: 'https://p:6443'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: p, user: u, namespace: cluster-x7k2p}}]\ncurrent-context: c\n";

    #[test]
    fn a_good_kubeconfig_names_the_provider_namespace() {
        let (bytes, ns) = validate(&secret(GOOD), "kubeconfig").unwrap();
        assert_eq!(ns, "cluster-x7k2p");
        assert_eq!(bytes, GOOD.as_bytes());
    }

    #[test]
    fn every_defect_is_a_typed_error() {
        assert!(matches!(
            validate(&secret(GOOD), "other"),
            Err(Error::MissingKey { .. })
        ));
        assert!(matches!(
            validate(&secret(": ["), "kubeconfig"),
            Err(Error::Parse { .. })
        ));
        let no_ns = GOOD.replace(", namespace: cluster-x7k2p", "");
        assert!(matches!(
            validate(&secret(&no_ns), "kubeconfig"),
            Err(Error::NoNamespace { .. })
        ));
        let no_ctx = GOOD.replace("current-context: c", "current-context: nope");
        assert!(matches!(
            validate(&secret(&no_ctx), "kubeconfig"),
            Err(Error::NoContext { .. })
        ));
    }
}

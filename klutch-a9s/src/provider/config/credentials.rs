//! Extracting a ProviderConfig's basic-auth credentials and CA bundle (spec 3.1): from Secrets,
//! environment variables or files; surrounding whitespace is trimmed. The values never leave
//! this module except into the HTTP client configuration.

use std::hash::{Hash, Hasher};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use secrecy::SecretString;

use crate::provider::api::SecretKeySelector;
use crate::provider::api::provider_config::{
    CredentialSelectors, CredentialsSource, ProviderConfigSpec,
};

/// Why credentials could not be extracted. Messages name Secrets, keys, variables and paths,
/// never values.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A Secret could not be read.
    #[error("cannot get secret {namespace}/{name}")]
    GetSecret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// A Secret does not exist.
    #[error("cannot get secret {namespace}/{name}: not found")]
    SecretNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A Secret lacks the key.
    #[error("secret {namespace}/{name} has no key {key:?}")]
    KeyNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The key.
        key: String,
    },
    /// The CA bundle Secret lacks the key.
    #[error("secret key not found in CA certificate secret: {0}")]
    CaKeyNotFound(String),
    /// The selector for the source is missing.
    #[error("{what}: source {source_name} needs a {field} selector")]
    MissingSelector {
        /// `username` or `password`.
        what: &'static str,
        /// The source.
        source_name: &'static str,
        /// The missing selector.
        field: &'static str,
    },
    /// An environment variable is unset.
    #[error("environment variable {0} is not set")]
    Env(String),
    /// A file cannot be read.
    #[error("cannot read {path}")]
    File {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// InjectedIdentity has no meaning for basic auth.
    #[error(
        "credentials source InjectedIdentity is not supported: the broker and the Backup Manager need a username and a password"
    )]
    InjectedIdentity,
}

/// Extracted credentials plus a fingerprint of their origin (for client caching).
pub struct Extracted {
    /// Username and password, if any.
    pub basic_auth: Option<(String, SecretString)>,
    /// The PEM CA bundle, if any.
    pub ca_bundle: Option<Vec<u8>>,
    /// Changes whenever a value or a Secret's resourceVersion changes.
    pub fingerprint: u64,
}

async fn secret_key(
    client: &kube::Client,
    sel: &SecretKeySelector,
    default_key: Option<&str>,
    h: &mut impl Hasher,
) -> Result<Option<Vec<u8>>, CredentialsError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &sel.namespace);
    let secret = api
        .get_opt(&sel.name)
        .await
        .map_err(|source| CredentialsError::GetSecret {
            namespace: sel.namespace.clone(),
            name: sel.name.clone(),
            source,
        })?
        .ok_or_else(|| CredentialsError::SecretNotFound {
            namespace: sel.namespace.clone(),
            name: sel.name.clone(),
        })?;
    secret.metadata.resource_version.hash(h);
    let key = if sel.key.is_empty() {
        default_key.unwrap_or_default()
    } else {
        &sel.key
    };
    Ok(secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone()))
}

async fn value(
    client: &kube::Client,
    source: CredentialsSource,
    sel: &CredentialSelectors,
    what: &'static str,
    h: &mut impl Hasher,
) -> Result<String, CredentialsError> {
    let raw = match source {
        CredentialsSource::Secret => {
            let s = sel
                .secret_ref
                .as_ref()
                .ok_or(CredentialsError::MissingSelector {
                    what,
                    source_name: "Secret",
                    field: "secretRef",
                })?;
            secret_key(client, s, None, h)
                .await?
                .ok_or_else(|| CredentialsError::KeyNotFound {
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                    key: s.key.clone(),
                })?
        }
        CredentialsSource::Environment => {
            let e = sel.env.as_ref().ok_or(CredentialsError::MissingSelector {
                what,
                source_name: "Environment",
                field: "env",
            })?;
            std::env::var(&e.name)
                .map_err(|_| CredentialsError::Env(e.name.clone()))?
                .into_bytes()
        }
        CredentialsSource::Filesystem => {
            let f = sel.fs.as_ref().ok_or(CredentialsError::MissingSelector {
                what,
                source_name: "Filesystem",
                field: "fs",
            })?;
            std::fs::read(&f.path).map_err(|source| CredentialsError::File {
                path: f.path.clone(),
                source,
            })?
        }
        CredentialsSource::InjectedIdentity => return Err(CredentialsError::InjectedIdentity),
        CredentialsSource::None => return Ok(String::new()),
    };
    let v = String::from_utf8_lossy(&raw).trim().to_owned();
    v.hash(h);
    Ok(v)
}

/// Extracts the credentials and CA bundle of a ProviderConfig.
pub async fn extract(
    client: &kube::Client,
    spec: &ProviderConfigSpec,
) -> Result<Extracted, CredentialsError> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let c = &spec.provider_credentials;
    let basic_auth = if c.source == CredentialsSource::None {
        None
    } else {
        let user = value(client, c.source, &c.username, "username", &mut h).await?;
        let pass = value(client, c.source, &c.password, "password", &mut h).await?;
        Some((user, SecretString::from(pass)))
    };
    let ca_bundle = match spec
        .tls
        .as_ref()
        .and_then(|t| t.ca_bundle_secret_ref.as_ref())
    {
        Some(sel) => {
            let key = if sel.key.is_empty() {
                "ca.crt"
            } else {
                &sel.key
            };
            Some(
                secret_key(client, sel, Some("ca.crt"), &mut h)
                    .await?
                    .ok_or_else(|| CredentialsError::CaKeyNotFound(key.to_owned()))?,
            )
        }
        None => None,
    };
    Ok(Extracted {
        basic_auth,
        ca_bundle,
        fingerprint: h.finish(),
    })
}

//! Binding spaces (spec §4.3): per identity one cluster namespace with `ClusterBinding cluster`,
//! ServiceAccount `klutch-binder`, its token Secret, the RoleBinding to ClusterRole
//! `klutch-binder` and Secret `kubeconfig` holding the issued kubeconfig.
//!
//! The identity is a [`BindingIdentity`]: issuer, subject and consumer cluster id, and the space
//! also belongs to one backend instance (its namespace prefix). Klutch keys spaces by `<sub>#<cid>`
//! alone, so a user of another IdP (or another backend on the same cluster) with the same `sub`
//! would receive someone else's namespace and token; here the key includes the issuer and the
//! prefix.
//!
//! Creation is race-free: the namespace name is derived from the key
//! (`<prefix>-<16 base-36 chars of SHA-224>`), so the API server's name uniqueness decides between
//! replicas; the loser reads the winner's namespace back and checks it belongs to the same key.
//!
//! Spaces created under the old key (`<sub>#<cid>` only: earlier versions and Klutch's Go
//! backend) are never handed out to anyone by default. With
//! [`BindingSpaces::with_legacy_issuer`] they are adopted by users of that one issuer, the issuer
//! the operator knows created them (docs/backend.md, "Identities and binding spaces").

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt as _};
use sha2::{Digest as _, Sha224};
use tokio::sync::Mutex;

use crate::api::claims::{LocalSecretKeyRef, SecretKey};
use crate::api::wellknown::{
    BINDER_NAME, CLUSTER_BINDING_NAME, IDENTITY_ANNOTATION, KUBECONFIG_SECRET_KEY,
    KUBECONFIG_SECRET_NAME,
};
use crate::api::{ClusterBinding, ClusterBindingSpec};

/// Label on cluster namespaces: base-62 SHA-224 of the space key (prefix, issuer, subject, cid).
/// Labels are indexed; the annotations are the authority.
pub const IDENTITY_HASH_LABEL: &str = "example-backend.klutch.anynines.com/identity-hash";
/// Annotation on cluster namespaces: the issuer of the identity that owns the space. Klutch's
/// annotation [`IDENTITY_ANNOTATION`] (`<sub>#<cid>`) is kept beside it.
pub const ISSUER_ANNOTATION: &str = "example-backend.klutch.anynines.com/identity-issuer";
/// Base-36 characters of the key digest in a cluster namespace's name.
pub const NAME_HASH_LEN: usize = 16;
/// The longest namespace prefix: `<prefix>-<hash>` must fit a 63-character namespace name.
pub const MAX_PREFIX_LEN: usize = 63 - 1 - NAME_HASH_LEN;
/// Field manager of the backend's writes.
pub const FIELD_MANAGER: &str = "klutch-bind-backend";

/// What went wrong while ensuring a binding space.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An API call failed.
    #[error("{what}")]
    Kube {
        /// The operation.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The token controller did not fill in the ServiceAccount token in time.
    #[error("token of ServiceAccount {namespace}/klutch-binder not issued within {waited:?}")]
    TokenTimeout {
        /// The cluster namespace.
        namespace: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The namespace a space key maps to exists and belongs to another identity (or to nothing
    /// of ours). Nothing is handed out.
    #[error("namespace {namespace} exists and does not belong to this identity")]
    Foreign {
        /// The namespace.
        namespace: String,
    },
    /// Several namespaces claim one identity (made by hand, or by an old racy version).
    #[error("{count} namespaces claim one identity ({names:?}); remove all but one")]
    Ambiguous {
        /// How many.
        count: usize,
        /// Their names.
        names: Vec<String>,
    },
    /// The space's namespace is being deleted; binding again works once it is gone.
    #[error("namespace {namespace} is being deleted; try again when it is gone")]
    Terminating {
        /// The namespace.
        namespace: String,
    },
    /// `namespace_prefix` leaves no room for the hash in a 63-character name.
    #[error("namespace prefix {prefix:?} is too long (at most {max} characters)")]
    PrefixTooLong {
        /// The prefix.
        prefix: String,
        /// The longest allowed.
        max: usize,
    },
    /// The kubeconfig could not be rendered.
    #[error("render the kubeconfig")]
    Render(#[source] serde_saphyr::ser_error::Error),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

/// How consumers reach the provider API server (spec §3.6).
#[derive(Clone, Debug)]
pub struct ExternalCluster {
    /// `server:` of issued kubeconfigs (`--external-address`, else the backend's API URL).
    pub server: String,
    /// PEM CA bundle (`--external-ca-file`, else the CA the backend trusts).
    pub ca_pem: Option<String>,
    /// `tls-server-name` (`--external-server-name`).
    pub server_name: Option<String>,
}

impl ExternalCluster {
    /// How the backend itself reaches its cluster: the API URL, the CA it trusts (as PEM) and
    /// its TLS server name; the default when no `--external-*` flag is given.
    pub fn from_kube_config(config: &kube::Config) -> Self {
        use base64::Engine as _;
        let ca_pem = config.root_cert.as_ref().map(|certs| {
            certs
                .iter()
                .map(|der| {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
                    let lines: Vec<&str> = b64
                        .as_bytes()
                        .chunks(64)
                        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
                        .collect();
                    format!(
                        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                        lines.join("\n")
                    )
                })
                .collect::<String>()
        });
        ExternalCluster {
            server: config
                .cluster_url
                .to_string()
                .trim_end_matches('/')
                .to_owned(),
            ca_pem,
            server_name: config.tls_server_name.clone(),
        }
    }
}

/// Settings of binding-space creation.
#[derive(Clone, Debug)]
pub struct BindingSpaceConfig {
    /// `--namespace-prefix` (without the trailing `-`).
    pub namespace_prefix: String,
    /// `providerPrettyName` of new ClusterBindings.
    pub pretty_name: String,
    /// How consumers reach the provider.
    pub external: ExternalCluster,
    /// How long to wait for the ServiceAccount token (spec: ≤ 10 s).
    pub token_timeout: Duration,
}

impl BindingSpaceConfig {
    /// Namespace prefix `cluster`, a 10 s token timeout, and the given name and address.
    pub fn new(pretty_name: impl Into<String>, external: ExternalCluster) -> Self {
        BindingSpaceConfig {
            namespace_prefix: "cluster".into(),
            pretty_name: pretty_name.into(),
            external,
            token_timeout: Duration::from_secs(10),
        }
    }
}

/// An ensured binding space.
#[derive(Clone, Debug)]
pub struct BindingSpace {
    /// The cluster namespace.
    pub namespace: String,
    /// The kubeconfig YAML handed to the consumer.
    pub kubeconfig: Vec<u8>,
}

/// Who owns a binding space: the verified issuer and subject of a login, and the consumer
/// cluster id (`cid`, spec §3.9). One space per identity and backend instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BindingIdentity {
    /// The issuer (`iss`) that verified the subject.
    pub issuer: String,
    /// The subject (`sub`), unique only at its issuer.
    pub subject: String,
    /// The consumer cluster id.
    pub cid: String,
}

impl BindingIdentity {
    /// The identity of `subject` at `issuer` on consumer cluster `cid`.
    pub fn new(
        issuer: impl Into<String>,
        subject: impl Into<String>,
        cid: impl Into<String>,
    ) -> Self {
        BindingIdentity {
            issuer: issuer.into(),
            subject: subject.into(),
            cid: cid.into(),
        }
    }

    /// Klutch's identity string `<sub>#<cid>`, the value of [`IDENTITY_ANNOTATION`]. Not unique
    /// across issuers: never look a space up by it alone.
    pub fn klutch_identity(&self) -> String {
        format!("{}#{}", self.subject, self.cid)
    }

    /// The key of this identity's space in the backend instance with namespace prefix `prefix`:
    /// an unambiguous encoding of all four parts.
    pub fn space_key(&self, prefix: &str) -> String {
        serde_json::json!([prefix, self.issuer, self.subject, self.cid]).to_string()
    }
}

/// The label value for a space key ([`BindingIdentity::space_key`]).
pub fn identity_hash(key: &str) -> String {
    crate::api::ids::base62(&Sha224::digest(key.as_bytes()))
}

/// The cluster namespace name of `identity` under `prefix`: `<prefix>-` and the first
/// [`NAME_HASH_LEN`] base-36 digits of SHA-224 of the space key. Deterministic, so two replicas
/// creating one identity's space race on one name and the API server picks the winner.
pub fn space_name(prefix: &str, identity: &BindingIdentity) -> String {
    let digest = Sha224::digest(identity.space_key(prefix).as_bytes());
    // Base 36 over the big-endian digest (lower-case letters and digits: a DNS label).
    let mut n: Vec<u8> = digest.to_vec();
    let mut digits = Vec::new();
    while digits.len() < NAME_HASH_LEN {
        let mut rem = 0u32;
        for byte in n.iter_mut() {
            let acc = (rem << 8) | u32::from(*byte);
            *byte = (acc / 36) as u8;
            rem = acc % 36;
        }
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[rem as usize]);
    }
    format!("{prefix}-{}", String::from_utf8(digits).expect("ASCII"))
}

/// Creates and finds binding spaces on the provider.
pub struct BindingSpaces {
    client: Client,
    config: BindingSpaceConfig,
    /// The issuer whose users may adopt spaces created under Klutch's old key `<sub>#<cid>`.
    legacy_issuer: Option<String>,
    /// One lock per identity: binds of one identity are serialised, others run in parallel.
    locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl std::fmt::Debug for BindingSpaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingSpaces")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The kubeconfig YAML: one cluster, context and user, each named `default`.
fn render(ext: &ExternalCluster, namespace: &str, token: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let mut cluster = serde_json::json!({ "server": ext.server });
    if let Some(ca) = &ext.ca_pem {
        cluster["certificate-authority-data"] =
            base64::engine::general_purpose::STANDARD.encode(ca).into();
    }
    if let Some(name) = &ext.server_name {
        cluster["tls-server-name"] = name.clone().into();
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "default", "cluster": cluster }],
        "contexts": [{ "name": "default", "context": { "cluster": "default", "namespace": namespace, "user": "default" } }],
        "current-context": "default",
        "users": [{ "name": "default", "user": { "token": token } }],
    });
    serde_saphyr::to_string(&doc)
        .map(String::into_bytes)
        .map_err(Error::Render)
}

impl BindingSpaces {
    /// Binding spaces on the cluster of `client`.
    pub fn new(client: Client, config: BindingSpaceConfig) -> Self {
        BindingSpaces {
            client,
            config,
            legacy_issuer: None,
            locks: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Lets users of `issuer` adopt spaces created under Klutch's old key `<sub>#<cid>` (by an
    /// earlier version of this backend or by Klutch's Go backend with this namespace prefix).
    /// Set it to the issuer those spaces were created with, and only when that backend
    /// instance had no other issuer: the old key does not say which issuer a space belongs to.
    pub fn with_legacy_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.legacy_issuer = Some(issuer.into());
        self
    }

    /// The settings.
    pub fn config(&self) -> &BindingSpaceConfig {
        &self.config
    }

    fn owned_by(&self, ns: &Namespace, identity: &BindingIdentity) -> bool {
        let annotations = ns.annotations();
        annotations.get(IDENTITY_ANNOTATION).map(String::as_str)
            == Some(identity.klutch_identity().as_str())
            && annotations.get(ISSUER_ANNOTATION) == Some(&identity.issuer)
            && ns.labels().get(IDENTITY_HASH_LABEL)
                == Some(&identity_hash(
                    &identity.space_key(&self.config.namespace_prefix),
                ))
    }

    /// Finds the cluster namespaces of `identity` in this backend instance (oldest first) by
    /// asking the API server: its deterministic namespace, or an adopted legacy one.
    pub async fn find(&self, identity: &BindingIdentity) -> Result<Vec<Namespace>> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let key = identity.space_key(&self.config.namespace_prefix);
        let list = namespaces
            .list(
                &ListParams::default()
                    .labels(&format!("{IDENTITY_HASH_LABEL}={}", identity_hash(&key))),
            )
            .await
            .map_err(kube_err("list cluster namespaces"))?;
        let mut found: Vec<Namespace> = list
            .items
            .into_iter()
            .filter(|ns| self.owned_by(ns, identity))
            .collect();
        sort_oldest_first(&mut found);
        Ok(found)
    }

    /// Ensures the binding space of `identity` and returns it with its kubeconfig.
    pub async fn ensure(&self, identity: &BindingIdentity) -> Result<BindingSpace> {
        // One creation at a time per identity and replica; across replicas the deterministic
        // name makes creation race-free.
        let lock = {
            let mut locks = self.locks.lock().expect("lock map");
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks
                .entry(identity.space_key(&self.config.namespace_prefix))
                .or_default()
                .clone()
        };
        let _guard = lock.lock().await;
        let namespace = self.ensure_namespace(identity).await?;
        let secret_name = self.ensure_cluster_binding(&namespace).await?;
        self.ensure_binder(&namespace).await?;
        let (token, _) = self.wait_for_token(&namespace).await?;
        let kubeconfig = self.render_kubeconfig(&namespace, &token)?;
        self.write_kubeconfig(&namespace, &secret_name, &kubeconfig)
            .await?;
        Ok(BindingSpace {
            namespace,
            kubeconfig,
        })
    }

    /// The namespace of `identity`: existing (deterministic or adopted), adopted from the legacy
    /// key, or created under the deterministic name.
    async fn ensure_namespace(&self, identity: &BindingIdentity) -> Result<String> {
        let prefix = &self.config.namespace_prefix;
        let max = MAX_PREFIX_LEN;
        if prefix.len() > max {
            return Err(Error::PrefixTooLong {
                prefix: prefix.clone(),
                max,
            });
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let name = space_name(prefix, identity);
        if let Some(ns) = namespaces
            .get_opt(&name)
            .await
            .map_err(kube_err("get cluster namespace"))?
        {
            return self.usable(ns, identity);
        }
        let found = self.find(identity).await?;
        match found.len() {
            0 => {}
            1 => return self.usable(found.into_iter().next().expect("one"), identity),
            count => {
                return Err(Error::Ambiguous {
                    count,
                    names: found.iter().map(|n| n.name_any()).collect(),
                });
            }
        }
        if self.legacy_issuer.as_deref() == Some(identity.issuer.as_str())
            && let Some(adopted) = self.adopt_legacy(identity).await?
        {
            return Ok(adopted);
        }
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                annotations: Some(BTreeMap::from([
                    (IDENTITY_ANNOTATION.to_owned(), identity.klutch_identity()),
                    (ISSUER_ANNOTATION.to_owned(), identity.issuer.clone()),
                ])),
                labels: Some(BTreeMap::from([(
                    IDENTITY_HASH_LABEL.to_owned(),
                    identity_hash(&identity.space_key(prefix)),
                )])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => {
                tracing::info!(namespace = %name, "created cluster namespace");
                Ok(name)
            }
            // Another replica (or request) created it first: use it if it is this identity's.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let ns = namespaces
                    .get(&name)
                    .await
                    .map_err(kube_err("get cluster namespace"))?;
                self.usable(ns, identity)
            }
            Err(e) => Err(kube_err("create cluster namespace")(e)),
        }
    }

    fn usable(&self, ns: Namespace, identity: &BindingIdentity) -> Result<String> {
        let name = ns.name_any();
        if !self.owned_by(&ns, identity) {
            tracing::warn!(namespace = %name, "namespace of a space key belongs to something else");
            return Err(Error::Foreign { namespace: name });
        }
        if ns.metadata.deletion_timestamp.is_some() {
            return Err(Error::Terminating { namespace: name });
        }
        Ok(name)
    }

    /// Adopts the oldest namespace of this prefix annotated with Klutch's identity
    /// `<sub>#<cid>` and no issuer: stamps the issuer and the new label on it.
    async fn adopt_legacy(&self, identity: &BindingIdentity) -> Result<Option<String>> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let prefix = format!("{}-", self.config.namespace_prefix);
        let klutch_identity = identity.klutch_identity();
        let mut legacy: Vec<Namespace> = namespaces
            .list(&ListParams::default())
            .await
            .map_err(kube_err("list namespaces for legacy spaces"))?
            .items
            .into_iter()
            .filter(|ns| {
                ns.name_any().starts_with(&prefix)
                    && ns.annotations().get(IDENTITY_ANNOTATION) == Some(&klutch_identity)
                    && !ns.annotations().contains_key(ISSUER_ANNOTATION)
                    && ns.metadata.deletion_timestamp.is_none()
            })
            .collect();
        sort_oldest_first(&mut legacy);
        let Some(oldest) = legacy.into_iter().next() else {
            return Ok(None);
        };
        let name = oldest.name_any();
        // Guarded by resourceVersion: if anything changed it meanwhile, the bind fails and the
        // next attempt starts over.
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": oldest.resource_version(),
                "annotations": { ISSUER_ANNOTATION: identity.issuer },
                "labels": {
                    IDENTITY_HASH_LABEL: identity_hash(&identity.space_key(&self.config.namespace_prefix)),
                },
            }
        });
        namespaces
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err(format!("adopt legacy cluster namespace {name}")))?;
        tracing::info!(namespace = %name, issuer = %identity.issuer, "adopted a binding space of the old identity key");
        Ok(Some(name))
    }

    /// Returns the name of the kubeconfig Secret the ClusterBinding refers to.
    async fn ensure_cluster_binding(&self, namespace: &str) -> Result<String> {
        let api: Api<ClusterBinding> = Api::namespaced(self.client.clone(), namespace);
        if let Some(existing) = api
            .get_opt(CLUSTER_BINDING_NAME)
            .await
            .map_err(kube_err("get ClusterBinding"))?
        {
            return Ok(existing.spec.kubeconfig_secret_ref.name);
        }
        let binding = ClusterBinding::new(
            CLUSTER_BINDING_NAME,
            ClusterBindingSpec {
                kubeconfig_secret_ref: LocalSecretKeyRef {
                    name: KUBECONFIG_SECRET_NAME.into(),
                    key: SecretKey::Kubeconfig,
                },
                provider_pretty_name: self.config.pretty_name.clone(),
                service_provider_spec: None,
            },
        );
        match api.create(&PostParams::default(), &binding).await {
            Ok(_) => Ok(KUBECONFIG_SECRET_NAME.into()),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = api
                    .get(CLUSTER_BINDING_NAME)
                    .await
                    .map_err(kube_err("get ClusterBinding"))?;
                Ok(existing.spec.kubeconfig_secret_ref.name)
            }
            Err(e) => Err(kube_err("create ClusterBinding")(e)),
        }
    }

    async fn ensure_binder(&self, namespace: &str) -> Result<()> {
        let ssa = PatchParams::apply(FIELD_MANAGER).force();
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(BINDER_NAME.into()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        sas.patch(BINDER_NAME, &ssa, &Patch::Apply(&sa))
            .await
            .map_err(kube_err("apply ServiceAccount klutch-binder"))?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let token = Secret {
            metadata: ObjectMeta {
                name: Some(BINDER_NAME.into()),
                annotations: Some(BTreeMap::from([(
                    "kubernetes.io/service-account.name".to_owned(),
                    BINDER_NAME.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/service-account-token".into()),
            ..Secret::default()
        };
        match secrets.create(&PostParams::default(), &token).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(kube_err("create token Secret klutch-binder")(e)),
        }
        let rbs: Api<RoleBinding> = Api::namespaced(self.client.clone(), namespace);
        rbs.patch(
            BINDER_NAME,
            &ssa,
            &Patch::Apply(&super::rbac::binder_role_binding(namespace, BINDER_NAME)),
        )
        .await
        .map_err(kube_err("apply RoleBinding klutch-binder"))?;
        Ok(())
    }

    async fn wait_for_token(&self, namespace: &str) -> Result<(String, Vec<u8>)> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let deadline = tokio::time::Instant::now() + self.config.token_timeout;
        loop {
            let secret = secrets
                .get_opt(BINDER_NAME)
                .await
                .map_err(kube_err("get token Secret"))?;
            let data = secret.and_then(|s| s.data).unwrap_or_default();
            if let (Some(token), Some(ca)) = (data.get("token"), data.get("ca.crt"))
                && !token.0.is_empty()
            {
                return Ok((String::from_utf8_lossy(&token.0).into_owned(), ca.0.clone()));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::TokenTimeout {
                    namespace: namespace.into(),
                    waited: self.config.token_timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The kubeconfig for a cluster namespace and token (spec §3.6).
    pub fn render_kubeconfig(&self, namespace: &str, token: &str) -> Result<Vec<u8>> {
        render(&self.config.external, namespace, token)
    }

    async fn write_kubeconfig(&self, namespace: &str, name: &str, kubeconfig: &[u8]) -> Result<()> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                KUBECONFIG_SECRET_KEY.to_owned(),
                ByteString(kubeconfig.to_vec()),
            )])),
            ..Secret::default()
        };
        // Server-side apply: no read-modify-write, so no conflicts to retry.
        secrets
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await
            .map_err(kube_err(format!(
                "apply kubeconfig Secret {namespace}/{name}"
            )))?;
        Ok(())
    }
}

fn sort_oldest_first(namespaces: &mut [Namespace]) {
    namespaces.sort_by(|a, b| {
        (
            a.metadata.creation_timestamp.as_ref().map(|t| t.0),
            a.name_any(),
        )
            .cmp(&(
                b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                b.name_any(),
            ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_cluster_defaults_to_the_backends_own_view_with_pem_ca() {
        let mut config = kube::Config::new("https://10.0.0.1:6443/".parse().unwrap());
        config.root_cert = Some(vec![vec![7u8; 100], vec![9u8; 10]]);
        config.tls_server_name = Some("api.internal".into());
        let ext = ExternalCluster::from_kube_config(&config);
        assert_eq!(ext.server, "https://10.0.0.1:6443");
        assert_eq!(ext.server_name.as_deref(), Some("api.internal"));
        let pem = ext.ca_pem.unwrap();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 2);
        assert!(pem.lines().all(|l| l.len() <= 64), "{pem}");
        let body: String = pem
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("-----"))
            .collect();
        assert_eq!(
            crate::api::wire::decode_base64(&body, "ca").unwrap(),
            vec![7u8; 100]
        );
    }

    #[test]
    fn space_names_are_deterministic_dns_labels_that_separate_issuers_and_prefixes() {
        let alice = BindingIdentity::new("https://idp-a", "alice", "cid123");
        let name = space_name("cluster", &alice);
        assert_eq!(name, space_name("cluster", &alice.clone()));
        assert_eq!(name.len(), "cluster-".len() + NAME_HASH_LEN);
        assert!(
            name["cluster-".len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
            "{name}"
        );
        let other_idp = BindingIdentity::new("https://idp-b", "alice", "cid123");
        assert_ne!(name, space_name("cluster", &other_idp));
        assert_ne!(
            name["cluster-".len()..],
            space_name("tenant", &alice)["tenant-".len()..]
        );
        // The key cannot be forged by moving separators between the parts.
        let shifted = BindingIdentity::new("https://idp-a", "alice#cid", "123");
        assert_eq!(alice.klutch_identity(), "alice#cid123");
        assert_ne!(alice.space_key("cluster"), shifted.space_key("cluster"));
    }

    #[test]
    fn kubeconfigs_have_one_default_cluster_context_and_user() {
        let spaces_config = BindingSpaceConfig::new(
            "P",
            ExternalCluster {
                server: "https://api:6443".into(),
                ca_pem: Some("CA".into()),
                server_name: Some("api.example.com".into()),
            },
        );
        // Rendering needs no client; build one that is never used.
        let yaml = render_for_test(&spaces_config, "cluster-abc", "tok");
        let kc = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("default"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://api:6443"));
        assert_eq!(cluster.tls_server_name.as_deref(), Some("api.example.com"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
        assert_eq!(
            kc.contexts[0]
                .context
                .as_ref()
                .unwrap()
                .namespace
                .as_deref(),
            Some("cluster-abc")
        );
        assert_eq!(kc.auth_infos[0].name, "default");
    }

    fn render_for_test(config: &BindingSpaceConfig, ns: &str, token: &str) -> String {
        String::from_utf8(render(&config.external, ns, token).unwrap()).unwrap()
    }
}

//! Binding spaces (spec §4.3): per identity `<sub>#<cid>` one cluster namespace with
//! `ClusterBinding cluster`, ServiceAccount `klutch-binder`, its token Secret, the RoleBinding to
//! ClusterRole `klutch-binder` and Secret `kubeconfig` holding the issued kubeconfig.
//!
//! Idempotent. The namespace is found through the API server (never a cache) by a label holding
//! a digest of the identity, then confirmed by the identity annotation. Two replicas racing on
//! one identity converge: after creating, the space re-lists and keeps the oldest namespace,
//! deleting its own duplicate.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt as _};
use sha2::{Digest as _, Sha224};
use tokio::sync::Mutex;

use crate::api::claims::{LocalSecretKeyRef, SecretKey};
use crate::api::wellknown::{
    BINDER_NAME, CLUSTER_BINDING_NAME, IDENTITY_ANNOTATION, KUBECONFIG_SECRET_KEY,
    KUBECONFIG_SECRET_NAME,
};
use crate::api::{ClusterBinding, ClusterBindingSpec};

/// Label on cluster namespaces: base-62 SHA-224 of the identity (labels are indexed; the
/// annotation is the authority).
pub const IDENTITY_HASH_LABEL: &str = "example-backend.klutch.anynines.com/identity-hash";
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

/// Creates and finds binding spaces on the provider.
pub struct BindingSpaces {
    client: Client,
    config: BindingSpaceConfig,
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

/// The label value for an identity.
pub fn identity_hash(identity: &str) -> String {
    crate::api::ids::base62(&Sha224::digest(identity.as_bytes()))
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
            locks: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &BindingSpaceConfig {
        &self.config
    }

    /// Finds the cluster namespaces of `identity` (oldest first) by asking the API server.
    pub async fn find(&self, identity: &str) -> Result<Vec<Namespace>> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let list = namespaces
            .list(&ListParams::default().labels(&format!(
                "{IDENTITY_HASH_LABEL}={}",
                identity_hash(identity)
            )))
            .await
            .map_err(kube_err("list cluster namespaces"))?;
        let mut found: Vec<Namespace> = list
            .items
            .into_iter()
            .filter(|ns| {
                ns.annotations()
                    .get(IDENTITY_ANNOTATION)
                    .map(String::as_str)
                    == Some(identity)
            })
            .filter(|ns| ns.metadata.deletion_timestamp.is_none())
            .collect();
        found.sort_by(|a, b| {
            (
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                a.name_any(),
            )
                .cmp(&(
                    b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    b.name_any(),
                ))
        });
        Ok(found)
    }

    /// Ensures the binding space of `identity` and returns it with its kubeconfig.
    pub async fn ensure(&self, identity: &str) -> Result<BindingSpace> {
        // One creation at a time per identity and replica; across replicas, `find` after
        // create converges.
        let lock = {
            let mut locks = self.locks.lock().expect("lock map");
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(identity.to_owned()).or_default().clone()
        };
        let _guard = lock.lock().await;
        let namespace = match self.find(identity).await?.into_iter().next() {
            Some(ns) => ns.name_any(),
            None => self.create_namespace(identity).await?,
        };
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

    async fn create_namespace(&self, identity: &str) -> Result<String> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", self.config.namespace_prefix)),
                annotations: Some(BTreeMap::from([(
                    IDENTITY_ANNOTATION.to_owned(),
                    identity.to_owned(),
                )])),
                labels: Some(BTreeMap::from([(
                    IDENTITY_HASH_LABEL.to_owned(),
                    identity_hash(identity),
                )])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let created = namespaces
            .create(&PostParams::default(), &ns)
            .await
            .map_err(kube_err("create cluster namespace"))?;
        let mine = created.name_any();
        let oldest = self
            .find(identity)
            .await?
            .into_iter()
            .next()
            .map(|n| n.name_any());
        match oldest {
            Some(oldest) if oldest != mine => {
                // Another replica won the race: keep its namespace, drop ours.
                let _ = namespaces.delete(&mine, &DeleteParams::default()).await;
                Ok(oldest)
            }
            _ => {
                tracing::info!(namespace = %mine, "created cluster namespace");
                Ok(mine)
            }
        }
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

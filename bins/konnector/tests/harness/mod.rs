//! Shared by the konnector's cluster tests: a provider side laid out as the backend would (cluster
//! namespace, ClusterBinding, kubeconfig Secret, APIServiceExports, service namespaces assigned
//! to APIServiceNamespaces), consumer bindings as `kubectl bind` would create them, and the
//! konnector binary as a child process.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::export::{ClusterScopedIsolation, Scope};
use klutch_sdk::api::{
    APIServiceBinding, APIServiceBindingSpec, APIServiceExport, APIServiceNamespace,
    APIServiceNamespaceStatus, AcceptablePermissionClaim, ClusterBinding, ClusterBindingSpec,
    ClusterSecretKeyRef, LocalSecretKeyRef, PermissionClaim,
};
use klutch_sdk::sync::naming::service_namespace;
use klutch_sdk::testenv::{TestCluster, install_crd};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;

/// Default wait for eventual conditions.
pub const WAIT: Duration = Duration::from_secs(90);

/// Polls until `check` returns `Some`.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    klutch_sdk::testenv::eventually(what, WAIT, check)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Creates a namespace (AlreadyExists is fine).
pub async fn create_namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// A CRD `<plural>.<group>` with kind `kind`, a `spec.size` integer (at most `maximum` when set)
/// and a free status.
pub fn crd(
    group: &str,
    kind: &str,
    plural: &str,
    scope: &str,
    maximum: Option<i64>,
) -> CustomResourceDefinition {
    klutch_sdk::testenv::fixtures::TestCrd::new(group, plural, kind)
        .scope(scope)
        .version("v1")
        .status_subresource()
        .spec_integer("size", maximum)
        .open_status()
        .build()
}

/// One consumer's binding space on the provider.
pub struct Space {
    /// Admin client of the provider cluster.
    pub provider: kube::Client,
    /// The cluster namespace.
    pub cluster_ns: String,
    /// The kubeconfig the konnector uses (admin credentials, context namespace = cluster ns).
    pub kubeconfig: String,
    backend: tokio::task::JoinHandle<()>,
}

impl Drop for Space {
    fn drop(&mut self) {
        self.backend.abort();
    }
}

/// A kubeconfig of `cluster`'s admin with context namespace `ns`.
pub fn kubeconfig_for(cluster: &TestCluster, ns: &str, context: &str) -> String {
    let mut kc = cluster.admin().kubeconfig();
    kc.contexts[0].name = context.into();
    kc.contexts[0].context.as_mut().unwrap().namespace = Some(ns.into());
    kc.current_context = Some(context.into());
    serde_saphyr_yaml(&kc)
}

fn serde_saphyr_yaml(kc: &kube::config::Kubeconfig) -> String {
    // JSON is YAML; kube parses it.
    serde_json::to_string(kc).unwrap()
}

/// Lays out a cluster namespace as the backend would and starts a stand-in for the backend's
/// APIServiceNamespace controller (assigns `<clusterNs>-<ns>` service namespaces).
pub async fn space(cluster: &TestCluster, cluster_ns: &str) -> Space {
    let provider = cluster.client().await.unwrap();
    for crd in klutch_sdk::api::crds() {
        install_crd(&provider, &crd).await.unwrap();
    }
    create_namespace(&provider, cluster_ns).await;
    let kubeconfig = kubeconfig_for(cluster, cluster_ns, "provider");
    put_secret(&provider, cluster_ns, "kubeconfig", &kubeconfig).await;
    let cb = ClusterBinding::new(
        "cluster",
        ClusterBindingSpec {
            kubeconfig_secret_ref: LocalSecretKeyRef {
                name: "kubeconfig".into(),
                key: Default::default(),
            },
            provider_pretty_name: "Test Provider".into(),
            service_provider_spec: None,
        },
    );
    match Api::<ClusterBinding>::namespaced(provider.clone(), cluster_ns)
        .create(&PostParams::default(), &cb)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create ClusterBinding: {e}"),
    }
    let backend = tokio::spawn(fake_backend(provider.clone(), cluster_ns.to_owned()));
    Space {
        provider,
        cluster_ns: cluster_ns.into(),
        kubeconfig,
        backend,
    }
}

/// Creates or replaces Secret `ns/name` with key `kubeconfig`.
pub async fn put_secret(client: &kube::Client, ns: &str, name: &str, kubeconfig: &str) {
    let body = json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": { "name": name, "namespace": ns },
        "stringData": { "kubeconfig": kubeconfig }
    });
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap();
}

/// Plays the backend's APIServiceNamespace controller.
async fn fake_backend(provider: kube::Client, cluster_ns: String) {
    let api: Api<APIServiceNamespace> = Api::namespaced(provider.clone(), &cluster_ns);
    let mut events = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = events.next().await {
        let Ok(mapping) = event else { continue };
        if mapping
            .status
            .as_ref()
            .and_then(|s| s.namespace.as_ref())
            .is_some()
            || mapping.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let name = mapping.metadata.name.clone().unwrap();
        let target = service_namespace(&cluster_ns, &name);
        create_namespace(&provider, &target).await;
        let status = json!({ "status": APIServiceNamespaceStatus { namespace: Some(target) } });
        let _ = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await;
    }
}

impl Space {
    /// Installs `crd` on the provider and exports it into this space.
    pub async fn export(
        &self,
        crd: &CustomResourceDefinition,
        isolation: Option<ClusterScopedIsolation>,
        claims: Vec<PermissionClaim>,
    ) -> APIServiceExport {
        install_crd(&self.provider, crd).await.unwrap();
        let scope = if crd.spec.scope == "Cluster" {
            Scope::Cluster
        } else {
            Scope::Namespaced
        };
        let spec =
            klutch_sdk::api::convert::export_spec_from_crd(crd, claims, scope, isolation).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        let export = APIServiceExport::new(&name, spec);
        let api: Api<APIServiceExport> = Api::namespaced(self.provider.clone(), &self.cluster_ns);
        let mut body = serde_json::to_value(&export).unwrap();
        body["metadata"]["namespace"] = json!(self.cluster_ns);
        api.patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap()
    }

    /// Installs `provider_crd` on the provider and exports `exported` (e.g. a cluster-scoped view
    /// of a namespaced provider CRD, for `Namespaced` isolation).
    pub async fn export_as(
        &self,
        provider_crd: &CustomResourceDefinition,
        exported: &CustomResourceDefinition,
        isolation: Option<ClusterScopedIsolation>,
    ) -> APIServiceExport {
        install_crd(&self.provider, provider_crd).await.unwrap();
        let spec = klutch_sdk::api::convert::export_spec_from_crd(
            exported,
            vec![],
            Scope::Cluster,
            isolation,
        )
        .unwrap();
        let name = exported.metadata.name.clone().unwrap();
        let mut body = serde_json::to_value(APIServiceExport::new(&name, spec)).unwrap();
        body["metadata"]["namespace"] = json!(self.cluster_ns);
        Api::<APIServiceExport>::namespaced(self.provider.clone(), &self.cluster_ns)
            .patch(
                &name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap()
    }

    /// The provider namespace objects of consumer namespace `ns` land in.
    pub fn service_ns(&self, ns: &str) -> String {
        service_namespace(&self.cluster_ns, ns)
    }
}

/// Creates the consumer side of a binding as `kubectl bind` would: Secret
/// `klutch-bind/kubeconfig-<clusterNs>` and APIServiceBinding `name` with `claims` accepted.
pub async fn bind(
    consumer: &kube::Client,
    space: &Space,
    name: &str,
    claims: Vec<AcceptablePermissionClaim>,
) {
    create_namespace(consumer, "klutch-bind").await;
    // Like kubectl bind: reuse the Secret for the same provider namespace (the konnector keeps
    // it rotated).
    let secret = format!("kubeconfig-{}", space.cluster_ns);
    if Api::<Secret>::namespaced(consumer.clone(), "klutch-bind")
        .get_opt(&secret)
        .await
        .unwrap()
        .is_none()
    {
        put_secret(consumer, "klutch-bind", &secret, &space.kubeconfig).await;
    }
    let binding = APIServiceBinding::new(
        name,
        APIServiceBindingSpec {
            kubeconfig_secret_ref: ClusterSecretKeyRef {
                name: secret,
                namespace: "klutch-bind".into(),
                key: Default::default(),
            },
            permission_claims: claims,
        },
    );
    // The konnector installs the APIServiceBinding CRD; wait until it is served.
    let api = Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind");
    eventually("the APIServiceBinding CRD", || async {
        match api.create(&PostParams::default(), &binding).await {
            Ok(_) => Some(()),
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(e) => panic!("create binding {name}: {e}"),
        }
    })
    .await;
}

/// The konnector binary as a child process, killed on drop.
pub struct Konnector {
    child: tokio::process::Child,
    /// Its /healthz and /metrics address.
    pub address: String,
    /// Its log file.
    pub log: PathBuf,
}

impl Konnector {
    /// Starts the konnector against `consumer_kubeconfig`, with identity `name`.
    pub fn start(consumer_kubeconfig: &Path, name: &str, dir: &Path) -> Konnector {
        let port = klutch_sdk::testenv::free_port().unwrap();
        let address = format!("127.0.0.1:{port}");
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_konnector"))
            .arg("--kubeconfig")
            .arg(consumer_kubeconfig)
            .args([
                "--lease-namespace",
                "klutch-bind",
                "--pod-name",
                name,
                "--healthz-address",
                &address,
            ])
            .args([
                "--heartbeat-period",
                "2s",
                "--informer-sync-timeout",
                "20s",
                "-v",
                "4",
            ])
            .env("RUST_LOG", "info,konnector=debug,klutch_sdk=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("start the konnector");
        Konnector {
            child,
            address,
            log,
        }
    }

    /// SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM and wait for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits")
            .unwrap()
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// GET `path` on its HTTP server: (status, body).
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut s = tokio::net::TcpStream::connect(&self.address).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.ok()?;
        let code = buf.split_whitespace().nth(1)?.parse().ok()?;
        let body = buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((code, body))
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The condition `type_` of a binding, as (status, reason).
pub async fn binding_condition(
    consumer: &kube::Client,
    name: &str,
    type_: &str,
) -> Option<(String, Option<String>)> {
    let b = Api::<APIServiceBinding>::namespaced(consumer.clone(), "klutch-bind")
        .get_opt(name)
        .await
        .ok()??;
    let c = b
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)?;
    Some((format!("{:?}", c.status), c.reason))
}

//! Shared by the cluster tests: one TestEnv per test binary (clusters `control-plane` as the
//! provider and `app` as the consumer), a lock that runs the tests that use the app cluster's
//! `klutch-bind` namespace one at a time, a reset between them, and a stand-in for the
//! backend's export-request controller.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::{APIServiceBinding, APIServiceExportRequest};
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

pub use kubectl_bind::{Io, SharedBuffer};

/// Serialises the tests of one binary: they share the app cluster's `klutch-bind`.
pub static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One test's view of the environment.
pub struct Fixture {
    /// The environment.
    pub env: &'static TestEnv,
    /// App cluster admin client.
    pub app: kube::Client,
    /// Provider admin client.
    pub provider: kube::Client,
    /// The app cluster kubeconfig file.
    pub app_kubeconfig: PathBuf,
    /// The cluster namespace on the provider (this test's binding space).
    pub cluster_ns: String,
    /// A provider kubeconfig whose context namespace is `cluster_ns`.
    pub provider_kubeconfig: Vec<u8>,
    /// Temporary files.
    pub dir: tempfile::TempDir,
    _guard: tokio::sync::MutexGuard<'static, ()>,
}

/// Installs the bind CRDs on the provider and the APIServiceBinding CRD on the app cluster
/// (the konnector's job; no konnector runs here), resets the app cluster, and creates the
/// cluster namespace `cluster_ns` on the provider.
pub async fn fixture(cluster_ns: &str) -> Fixture {
    klutch_sdk::tls::install_crypto_provider();
    let guard = LOCK.lock().await;
    let env = TestEnv::shared().await.expect("test environment");
    let app = env["app"].client().await.unwrap();
    let provider = env["control-plane"].client().await.unwrap();
    for crd in klutch_sdk::api::crds() {
        install_crd(&provider, &crd).await.unwrap();
    }
    let binding_crd = klutch_sdk::api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "APIServiceBinding")
        .unwrap();
    install_crd(&app, &binding_crd).await.unwrap();
    reset(&app).await;

    let namespaces: Api<Namespace> = Api::all(provider.clone());
    if namespaces.get_opt(cluster_ns).await.unwrap().is_none() {
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": cluster_ns}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    let mut kubeconfig = env["control-plane"].admin().kubeconfig();
    for context in &mut kubeconfig.contexts {
        if let Some(c) = context.context.as_mut() {
            c.namespace = Some(cluster_ns.to_string());
        }
    }
    let provider_kubeconfig = serde_saphyr::to_string(&kubeconfig).unwrap().into_bytes();
    let dir = tempfile::tempdir().unwrap();
    let app_kubeconfig = dir.path().join("app.kubeconfig");
    env["app"]
        .admin()
        .write_kubeconfig(&app_kubeconfig)
        .unwrap();
    Fixture {
        env,
        app,
        provider,
        app_kubeconfig,
        cluster_ns: cluster_ns.to_string(),
        provider_kubeconfig,
        dir,
        _guard: guard,
    }
}

/// Removes everything kubectl bind may have written to the app cluster.
pub async fn reset(app: &kube::Client) {
    let bindings: Api<APIServiceBinding> = Api::namespaced(app.clone(), "klutch-bind");
    let _ = bindings
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    for name in names::<ClusterRole>(app, "klutch-bind-konnector").await {
        let _ = Api::<ClusterRole>::all(app.clone())
            .delete(&name, &DeleteParams::default())
            .await;
    }
    for name in names::<ClusterRoleBinding>(app, "klutch-bind-konnector").await {
        let _ = Api::<ClusterRoleBinding>::all(app.clone())
            .delete(&name, &DeleteParams::default())
            .await;
    }
    let crds: Api<CustomResourceDefinition> = Api::all(app.clone());
    for crd in crds.list(&ListParams::default()).await.unwrap() {
        let name = crd.metadata.name.unwrap();
        if name.ends_with(".example.com") || name.ends_with(".mangodb.com") {
            let _ = crds.delete(&name, &DeleteParams::default()).await;
        }
    }
    let namespaces: Api<Namespace> = Api::all(app.clone());
    let _ = namespaces
        .delete("klutch-bind", &DeleteParams::default())
        .await;
    wait_for("namespace klutch-bind to be gone", || async {
        namespaces.get_opt("klutch-bind").await.unwrap().is_none()
    })
    .await;
}

async fn names<K>(client: &kube::Client, prefix: &str) -> Vec<String>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|o| o.meta().name.clone())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Polls `check` every 100 ms for up to 60 s.
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let probe = || {
        let done = check();
        async move { done.await.then_some(()) }
    };
    klutch_sdk::testenv::eventually(what, Duration::from_secs(60), probe)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// What the stand-in export-request controller answers.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// `phase: Succeeded`.
    Succeed,
    /// `phase: Failed` with this terminal message.
    Fail(String),
    /// Leave requests Pending.
    Ignore,
}

/// Plays the backend's export-request controller in `namespace` on the provider until the
/// returned handle is dropped or aborted.
pub fn backend_controller(
    provider: kube::Client,
    namespace: &str,
    verdict: Verdict,
) -> AbortOnDrop {
    let requests: Api<APIServiceExportRequest> = Api::namespaced(provider, namespace);
    AbortOnDrop(tokio::spawn(async move {
        loop {
            if let Ok(list) = requests.list(&ListParams::default()).await {
                for request in list {
                    let pending = request.status.as_ref().is_none_or(|s| {
                        s.phase == klutch_sdk::api::export_request::ExportRequestPhase::Pending
                    });
                    let patch = match (&verdict, pending) {
                        (Verdict::Succeed, true) => {
                            serde_json::json!({"status": {"phase": "Succeeded"}})
                        }
                        (Verdict::Fail(m), true) => {
                            serde_json::json!({"status": {"phase": "Failed", "terminalMessage": m}})
                        }
                        _ => continue,
                    };
                    let name = request.metadata.name.unwrap();
                    let _ = requests
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }))
}

/// Aborts a task when dropped.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An IO for tests with a given CLI version.
pub fn io(version: &str, input: &str) -> (Io, SharedBuffer, SharedBuffer) {
    let (mut io, out, err) = Io::capture(input);
    io.version = version.to_string();
    (io, out, err)
}

/// The requests in the cluster namespace on the provider.
pub async fn provider_requests(f: &Fixture) -> Vec<String> {
    Api::<APIServiceExportRequest>::namespaced(f.provider.clone(), &f.cluster_ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect()
}

/// Whether `klutch-bind` exists in the app cluster.
pub async fn consumer_namespace_exists(app: &kube::Client) -> bool {
    Api::<Namespace>::all(app.clone())
        .get_opt("klutch-bind")
        .await
        .unwrap()
        .is_some_and(|ns| ns.metadata.deletion_timestamp.is_none())
}

/// The konnector Deployment's image, if installed.
pub async fn konnector_image(app: &kube::Client) -> Option<String> {
    Api::<Deployment>::namespaced(app.clone(), "klutch-bind")
        .get_opt("konnector")
        .await
        .unwrap()
        .and_then(|d| d.spec?.template.spec?.containers.into_iter().next()?.image)
}

/// Provider kubeconfig Secrets in `klutch-bind`.
pub async fn kubeconfig_secrets(app: &kube::Client) -> Vec<String> {
    Api::<Secret>::namespaced(app.clone(), "klutch-bind")
        .list(&ListParams::default().labels("klutch.anynines.com/provider-kubeconfig=true"))
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|s| s.metadata.name)
                .collect()
        })
        .unwrap_or_default()
}

/// Filters for snapshots: ages, random Secret names, ports, temporary paths.
pub fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"kubeconfig-[a-z0-9]{5}", "kubeconfig-[RAND]"),
        (r"export-[a-z0-9]{5}", "export-[RAND]"),
        (r"\s+\d+[smhd]\n", "   [AGE]\n"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"localhost:\d+", "localhost:[PORT]"),
        (
            r"(accept APIServiceExportRequest [a-z0-9-]+(?:\.[a-z0-9-]+)*)\.*\n",
            "$1[DOTS]\n",
        ),
        (r"p=\d+", "p=[PORT]"),
        (r"s=[A-Za-z0-9]{32}", "s=[SID]"),
        (r"c=[A-Za-z0-9]{6}", "c=[CID]"),
        (r"v\d+\.\d+\.\d+", "v[VERSION]"),
    ]
}

/// Whether the konnector's ServiceAccount may `verb` the resource, per the apiserver's
/// authorizer (a SubjectAccessReview).
pub async fn konnector_may(
    app: &kube::Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r.to_string(), Some(s.to_string())),
        None => (resource.to_string(), None),
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("system:serviceaccount:klutch-bind:konnector".into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                "system:serviceaccounts:klutch-bind".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource),
                subresource,
                namespace: namespace.map(str::to_string),
                name: name.map(str::to_string),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let answer = Api::<SubjectAccessReview>::all(app.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    answer.status.is_some_and(|s| s.allowed)
}

//! One tenant cannot stall the backend's controllers (issue #19 item 4), on a real cluster.
//!
//! A tenant's objects the Rust types cannot read are stored while the CRD schemas are loose (as
//! they were before they were tightened, or as Klutch's still are): a ClusterBinding condition
//! `status: Pwned, severity: Apocalyptic`, an APIServiceNamespace without `spec`, an export with
//! a bad condition. The shipped schemas now refuse such writes. The backend is restarted with
//! the bad objects present, and a new tenant still gets its ClusterRole, service namespace and
//! health; the bad objects are reported by events, and the bad tenant's service namespace is not
//! deleted.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::{
    APIServiceExport, APIServiceExportTemplate, APIServiceNamespace, ClusterBinding,
};
use klutch_sdk::backend::controllers::Timing;
use klutch_sdk::backend::controllers::lenient::INVALID_OBJECT;
use klutch_sdk::backend::{
    AuthError, Authenticator, BindingIdentity, BindingSpaceConfig, BindingSpaces, ExternalCluster,
    LoginStart, TemplateBackend, TemplateBackendConfig, VerifiedIdentity,
};
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::CustomResourceExt as _;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};

const WAIT: Duration = Duration::from_secs(90);

/// The controllers never log anyone in.
struct NoLogins;

impl Authenticator for NoLogins {
    async fn start_login(&self, _: &str, _: &str) -> Result<LoginStart, AuthError> {
        Err(AuthError::Unsupported)
    }
    async fn finish_login(&self, _: &str, _: &str, _: &str) -> Result<VerifiedIdentity, AuthError> {
        Err(AuthError::Unsupported)
    }
}

async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    klutch_sdk::testenv::eventually(what, WAIT, probe)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The reference backend (its catalogue caches); bounded, as a stalled cache never returns.
async fn start_backend(client: &kube::Client) -> Arc<TemplateBackend<NoLogins>> {
    tokio::time::timeout(
        WAIT,
        TemplateBackend::start(
            client.clone(),
            NoLogins,
            TemplateBackendConfig {
                pretty_name: "Test Provider".into(),
                consumer_scope: klutch_sdk::api::export::Scope::Namespaced,
                cluster_scoped_isolation: klutch_sdk::api::export::ClusterScopedIsolation::Prefixed,
            },
        ),
    )
    .await
    .expect("the backend's catalogue caches fill despite undecodable templates")
    .unwrap()
}

/// The controllers as a restartable task.
struct Controllers(tokio::task::JoinHandle<()>);

impl Controllers {
    fn start(client: kube::Client, backend: Arc<TemplateBackend<NoLogins>>) -> Self {
        Controllers(tokio::spawn(async move {
            klutch_sdk::backend::controllers::run_with(client, backend, Timing::default())
                .await
                .expect("controllers");
        }))
    }

    async fn stop(self) {
        self.0.abort();
        let _ = self.0.await;
    }
}

/// `crd` with a schema that admits anything (what the tenant's objects were written under).
fn loose(crd: &CustomResourceDefinition) -> CustomResourceDefinition {
    let mut crd = crd.clone();
    for version in &mut crd.spec.versions {
        version.schema = Some(serde_json::from_value(serde_json::json!({
            "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
        }))
        .unwrap());
    }
    crd
}

fn bad_conditions() -> serde_json::Value {
    serde_json::json!([{
        "type": "Ready", "status": "Pwned", "severity": "Apocalyptic",
        "lastTransitionTime": "2026-01-01T00:00:00Z"
    }])
}

/// Tenant `who` is served: ClusterRole, service namespace `default` and `Healthy` set.
async fn served(client: &kube::Client, cluster_ns: &str) {
    let roles = Api::<ClusterRole>::all(client.clone());
    let role = format!("klutch-binder-{cluster_ns}");
    eventually(&format!("ClusterRole {role}"), || {
        let roles = roles.clone();
        let role = role.clone();
        async move { roles.get_opt(&role).await.ok().flatten() }
    })
    .await;
    let asns = Api::<APIServiceNamespace>::namespaced(client.clone(), cluster_ns);
    let service_ns = eventually("the service namespace is assigned", || {
        let asns = asns.clone();
        async move {
            asns.get("default")
                .await
                .ok()
                .and_then(|a| a.status)
                .and_then(|s| s.namespace)
        }
    })
    .await;
    let namespaces = Api::<Namespace>::all(client.clone());
    eventually(&format!("namespace {service_ns}"), || {
        let namespaces = namespaces.clone();
        let service_ns = service_ns.clone();
        async move { namespaces.get_opt(&service_ns).await.ok().flatten() }
    })
    .await;
    let bindings = Api::<ClusterBinding>::namespaced(client.clone(), cluster_ns);
    eventually("the ClusterBinding has Healthy", || {
        let bindings = bindings.clone();
        async move {
            let b = bindings.get("cluster").await.ok()?;
            b.status?
                .conditions
                .iter()
                .any(|c| c.type_ == "Healthy")
                .then_some(())
        }
    })
    .await;
}

async fn create_default_asn(client: &kube::Client, cluster_ns: &str, name: &str) {
    let asn = APIServiceNamespace::new(name, Default::default());
    Api::<APIServiceNamespace>::namespaced(client.clone(), cluster_ns)
        .create(&PostParams::default(), &asn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_new_tenant_is_bound_after_a_restart_with_undecodable_objects_present() {
    klutch_sdk::tls::install_crypto_provider();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let env = TestEnv::builder()
        .cluster("provider")
        .start()
        .await
        .expect("start the provider cluster");
    let cluster = &env["provider"];
    let client = cluster.client().await.unwrap();
    for crd in klutch_sdk::api::crds() {
        install_crd(&client, &crd).await.unwrap();
    }
    let backend = start_backend(&client).await;
    let spaces = BindingSpaces::new(
        client.clone(),
        BindingSpaceConfig {
            namespace_prefix: "cluster".into(),
            pretty_name: "Test Provider".into(),
            external: ExternalCluster {
                server: cluster.url().to_owned(),
                ca_pem: Some(cluster.ca_pem().to_owned()),
                server_name: None,
            },
            token_timeout: Duration::from_secs(30),
        },
    );

    // The tenant that will misbehave is bound and served like everyone.
    let controllers = Controllers::start(client.clone(), backend.clone());
    let evil = spaces
        .ensure(&BindingIdentity::new("https://idp", "evil", "cidEvil"))
        .await
        .unwrap()
        .namespace;
    create_default_asn(&client, &evil, "default").await;
    served(&client, &evil).await;
    let evil_service_ns = Api::<APIServiceNamespace>::namespaced(client.clone(), &evil)
        .get("default")
        .await
        .unwrap()
        .status
        .unwrap()
        .namespace
        .unwrap();
    controllers.stop().await;

    // Its bad objects, written past the schema.
    let strict: Vec<CustomResourceDefinition> = [
        ClusterBinding::crd(),
        APIServiceNamespace::crd(),
        APIServiceExport::crd(),
        APIServiceExportTemplate::crd(),
    ]
    .into_iter()
    .map(|crd| {
        klutch_sdk::api::crds()
            .into_iter()
            .find(|c| c.metadata.name == crd.metadata.name)
            .unwrap()
    })
    .collect();
    for crd in &strict {
        install_crd(&client, &loose(crd)).await.unwrap();
    }
    // Untyped: the typed API cannot read back what these writes return.
    let bindings = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &evil,
        &kube::discovery::ApiResource::erase::<ClusterBinding>(&()),
    );
    let asns = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &evil,
        &kube::discovery::ApiResource::erase::<APIServiceNamespace>(&()),
    );
    let exports = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &evil,
        &kube::discovery::ApiResource::erase::<APIServiceExport>(&()),
    );
    let bad_status = serde_json::json!({ "status": { "conditions": bad_conditions() } });
    // The API server switches to the loose schema asynchronously: retry until it admits.
    eventually("the loose schema admits a bad condition", || {
        let bindings = bindings.clone();
        let patch = bad_status.clone();
        async move {
            bindings
                .patch_status("cluster", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .ok()
                .map(drop)
        }
    })
    .await;
    // `default` loses its spec (it keeps its status and service namespace); `nospec` never had one.
    asns.patch(
        "default",
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({ "spec": null })),
    )
    .await
    .unwrap();
    asns.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({
            "apiVersion": "klutch.anynines.com/v1alpha1", "kind": "APIServiceNamespace",
            "metadata": { "name": "nospec" }
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    exports
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "apiVersion": "klutch.anynines.com/v1alpha1", "kind": "APIServiceExport",
                "metadata": { "name": "mangodbs.mangodb.com" },
                "spec": {
                    "group": "mangodb.com", "scope": "Namespaced", "informerScope": "Namespaced",
                    "names": { "kind": "MangoDB", "plural": "mangodbs" },
                    "versions": [{ "name": "v1", "served": true, "storage": true,
                                   "schema": { "openAPIV3Schema": { "type": "object" } } }]
                }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    exports
        .patch_status(
            "mangodbs.mangodb.com",
            &PatchParams::default(),
            &Patch::Merge(&bad_status),
        )
        .await
        .unwrap();
    let templates = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "default",
        &kube::discovery::ApiResource::erase::<APIServiceExportTemplate>(&()),
    );
    templates
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "apiVersion": "example-backend.klutch.anynines.com/v1alpha1",
                "kind": "APIServiceExportTemplate",
                "metadata": { "name": "broken" },
                "spec": { "APIServiceSelector": { "resource": "mangodbs", "group": "mangodb.com" } }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    templates
        .patch_status(
            "broken",
            &PatchParams::default(),
            &Patch::Merge(&bad_status),
        )
        .await
        .unwrap();
    for crd in &strict {
        install_crd(&client, crd).await.unwrap();
    }
    // The shipped schema refuses such writes (a new value: unchanged stored values are
    // ratcheted through by the API server).
    let worse = serde_json::json!({ "status": { "conditions": [{
        "type": "Ready", "status": "Hacked", "lastTransitionTime": "2026-01-01T00:00:00Z"
    }] } });
    eventually("the shipped schema refuses a bad condition", || {
        let bindings = bindings.clone();
        let patch = worse.clone();
        async move {
            match bindings
                .patch_status("cluster", &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Err(kube::Error::Api(s)) if s.code == 422 => Some(()),
                _ => None,
            }
        }
    })
    .await;
    assert!(
        Api::<ClusterBinding>::namespaced(client.clone(), &evil)
            .list(&Default::default())
            .await
            .is_err(),
        "the typed list fails: this is what stalled the controllers"
    );

    // Restart with the bad objects present: a new tenant is served all the same.
    drop(backend);
    let backend = start_backend(&client).await;
    let controllers = Controllers::start(client.clone(), backend.clone());
    let fresh = spaces
        .ensure(&BindingIdentity::new("https://idp", "fresh", "cidFresh"))
        .await
        .unwrap()
        .namespace;
    create_default_asn(&client, &fresh, "default").await;
    served(&client, &fresh).await;

    // The bad objects are reported on, not acted on.
    let events = Api::<Event>::namespaced(client.clone(), &evil);
    for (kind, name) in [
        ("ClusterBinding", "cluster"),
        ("APIServiceNamespace", "nospec"),
        ("APIServiceNamespace", "default"),
        ("APIServiceExport", "mangodbs.mangodb.com"),
    ] {
        eventually(
            &format!("an {INVALID_OBJECT} event on {kind} {name}"),
            || {
                let events = events.clone();
                async move {
                    events
                        .list(&Default::default())
                        .await
                        .ok()?
                        .items
                        .into_iter()
                        .find(|e| {
                            e.reason.as_deref() == Some(INVALID_OBJECT)
                                && e.regarding.as_ref().and_then(|r| r.kind.as_deref())
                                    == Some(kind)
                                && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                                    == Some(name)
                        })
                }
            },
        )
        .await;
    }
    let kept = Api::<Namespace>::all(client.clone())
        .get(&evil_service_ns)
        .await
        .expect("the bad tenant's service namespace is kept");
    assert!(kept.metadata.deletion_timestamp.is_none());
    assert!(
        Api::<APIServiceExport>::namespaced(client.clone(), &evil)
            .get_metadata("mangodbs.mangodb.com")
            .await
            .is_ok(),
        "an undecodable export is not deleted"
    );
    controllers.stop().await;
}

//! The resource syncer between two real clusters: spec up, drift reverted, status down, a
//! provider copy deleted behind our back recreated, and deletion that orphans nothing.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::{APIServiceNamespace, APIServiceNamespaceStatus};
use klutch_sdk::konnector::ResourceSyncer;
use klutch_sdk::sync::naming::service_namespace;
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ObjectMeta, Patch,
    PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const CLUSTER_NS: &str = "cluster-sync1";

fn widgets() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("sync.klutch.test", "v1", "Widget"),
        "widgets",
    )
}

/// Installs the Widget CRD; the provider's copy may be stricter (`maximum`) than the consumer's.
async fn install_widget_crd(client: &kube::Client, maximum: Option<i64>) {
    let mut size = json!({ "type": "integer" });
    if let Some(max) = maximum {
        size["maximum"] = json!(max);
    }
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.sync.klutch.test" },
        "spec": {
            "group": "sync.klutch.test", "scope": "Namespaced",
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList" },
            "versions": [{ "name": "v1", "served": true, "storage": true, "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": { "type": "object", "properties": {
                    "spec": { "type": "object", "properties": { "size": size } },
                    "status": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } } } }]
        }
    }))
    .unwrap();
    install_crd(client, &crd).await.unwrap();
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
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

/// Plays the backend's part: assigns a service namespace to every APIServiceNamespace.
async fn fake_backend(provider: kube::Client) {
    let api: Api<APIServiceNamespace> = Api::namespaced(provider.clone(), CLUSTER_NS);
    let mut events = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(Ok(mapping)) = events.next().await {
        if mapping
            .status
            .as_ref()
            .and_then(|s| s.namespace.as_ref())
            .is_some()
        {
            continue;
        }
        let name = mapping.metadata.name.clone().unwrap();
        let target = service_namespace(CLUSTER_NS, &name);
        create_namespace(&provider, &target).await;
        let status = json!({ "status": APIServiceNamespaceStatus { namespace: Some(target) } });
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
}

/// Polls until `check` returns `Some`, for at most a minute.
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    klutch_sdk::testenv::eventually(what, WAIT, check)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Logs of the syncer, shown by the test harness when a test fails.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "klutch_sdk=debug,kube_runtime=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The shared clusters, with the Widget CRD on both sides (the provider's stricter) and the bind
/// API CRDs on the provider.
async fn clusters_with_widgets() -> (kube::Client, kube::Client) {
    let env = TestEnv::shared()
        .await
        .expect("start the shared environment");
    let consumer = env["app"].client().await.unwrap();
    let provider = env["control-plane"].client().await.unwrap();
    install_widget_crd(&consumer, None).await;
    install_widget_crd(&provider, Some(100)).await;
    for crd in klutch_sdk::api::crds() {
        install_crd(&provider, &crd).await.unwrap();
    }
    (consumer, provider)
}

#[tokio::test]
async fn objects_sync_between_two_real_clusters() {
    init_logs();
    let (consumer, provider) = clusters_with_widgets().await;
    create_namespace(&provider, CLUSTER_NS).await;
    create_namespace(&consumer, "team-a").await;

    let backend = tokio::spawn(fake_backend(provider.clone()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let syncer = ResourceSyncer::new(consumer.clone(), provider.clone(), widgets(), CLUSTER_NS);
    let sync_task = tokio::spawn(syncer.run(async move {
        let _ = stopped.await;
    }));

    let ar = widgets();
    let mine: Api<DynamicObject> = Api::namespaced_with(consumer.clone(), "team-a", &ar);
    let provider_ns = service_namespace(CLUSTER_NS, "team-a");
    let theirs: Api<DynamicObject> = Api::namespaced_with(provider.clone(), &provider_ns, &ar);
    let mut w = DynamicObject::new("w1", &ar);
    w.data = json!({ "spec": { "size": 1 } });
    mine.create(&PostParams::default(), &w).await.unwrap();

    // Spec goes up, marked as bound; the consumer object gets our finalizer.
    let copy = eventually("the provider copy", || async {
        theirs.get_opt("w1").await.unwrap()
    })
    .await;
    assert_eq!(copy.data["spec"], json!({ "size": 1 }));
    assert_eq!(
        copy.metadata.annotations.as_ref().unwrap()["klutch.anynines.com/bound"],
        "true"
    );
    assert!(copy.data.get("status").is_none());
    eventually("the finalizer", || async {
        let o = mine.get("w1").await.unwrap();
        o.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"klutch.anynines.com/syncer".to_string())
            .then_some(())
    })
    .await;

    // A consumer change goes up.
    mine.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "size": 2 } })),
    )
    .await
    .unwrap();
    eventually("spec update", || async {
        (theirs.get("w1").await.unwrap().data["spec"]["size"] == 2).then_some(())
    })
    .await;

    // Drift on the provider is reverted.
    theirs
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "size": 9 } })),
        )
        .await
        .unwrap();
    eventually("drift reverted", || async {
        (theirs.get("w1").await.unwrap().data["spec"]["size"] == 2).then_some(())
    })
    .await;

    // Status comes down, whole.
    theirs
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": "Ready", "port": 5432 } })),
        )
        .await
        .unwrap();
    eventually("status down", || async {
        (mine.get("w1").await.unwrap().data.get("status")
            == Some(&json!({ "phase": "Ready", "port": 5432 })))
        .then_some(())
    })
    .await;

    // A provider copy deleted behind our back is recreated.
    let old_uid = theirs.get("w1").await.unwrap().metadata.uid.unwrap();
    theirs.delete("w1", &DeleteParams::default()).await.unwrap();
    eventually("recreated", || async {
        theirs
            .get_opt("w1")
            .await
            .unwrap()
            .filter(|o| o.metadata.uid.as_deref() != Some(old_uid.as_str()))
            .map(|_| ())
    })
    .await;

    // Deleting the consumer object deletes the provider copy first, then releases the object.
    mine.delete("w1", &DeleteParams::default()).await.unwrap();
    eventually("consumer object gone", || async {
        mine.get_opt("w1").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        theirs.get_opt("w1").await.unwrap().is_none(),
        "the provider copy went first: nothing is orphaned"
    );

    // A spec the provider rejects stays on the consumer side, retried, until it is fixed.
    let mut too_big = DynamicObject::new("w2", &ar);
    too_big.data = json!({ "spec": { "size": 1000 } });
    mine.create(&PostParams::default(), &too_big).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        theirs.get_opt("w2").await.unwrap().is_none(),
        "the provider refused it"
    );
    assert_eq!(
        mine.get("w2").await.unwrap().data["spec"]["size"],
        1000,
        "the consumer object is untouched"
    );
    mine.patch(
        "w2",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "size": 50 } })),
    )
    .await
    .unwrap();
    eventually("the fixed object", || async {
        theirs.get_opt("w2").await.unwrap().map(|_| ())
    })
    .await;

    let _ = stop.send(());
    tokio::time::timeout(WAIT, sync_task)
        .await
        .expect("the syncer stops on shutdown")
        .unwrap();
    backend.abort();
}

#[tokio::test]
async fn provider_crds_become_exports_and_consumer_crds() {
    use klutch_sdk::api::convert::{
        crd_from_export, export_spec_from_crd, is_owned_by, source_spec_hash,
    };
    use klutch_sdk::api::export::{ClusterScopedIsolation, Scope};
    use klutch_sdk::api::{
        APIServiceBinding, APIServiceBindingSpec, APIServiceExport, ClusterSecretKeyRef,
    };

    let env = TestEnv::shared()
        .await
        .expect("start the shared environment");
    let consumer = env["app"].client().await.unwrap();
    let provider = env["control-plane"].client().await.unwrap();
    for crd in klutch_sdk::api::crds() {
        install_crd(&provider, &crd).await.unwrap();
    }
    install_crd(&consumer, &klutch_sdk::api::crds().remove(0))
        .await
        .unwrap();
    create_namespace(&provider, "cluster-export1").await;
    create_namespace(&consumer, "klutch-bind").await;

    // Klutch's e2e fixture CRDs, a namespaced and a cluster-scoped one, installed on the provider.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/klutch-v1.5/bind/test/e2e/bind/fixtures/provider");
    for file in ["crd-mangodb.yaml", "crd-foo.yaml"] {
        let crd: CustomResourceDefinition =
            serde_saphyr::from_str(&std::fs::read_to_string(fixtures.join(file)).unwrap()).unwrap();
        let name = crd.metadata.name.clone().unwrap();
        let crd = install_crd(&provider, &crd).await.unwrap();

        // Backend side: CRD -> export, accepted by the export CRD's CEL rules.
        let scope = if crd.spec.scope == "Cluster" {
            Scope::Cluster
        } else {
            Scope::Namespaced
        };
        let spec =
            export_spec_from_crd(&crd, vec![], scope, Some(ClusterScopedIsolation::Prefixed))
                .unwrap();
        let mut export = APIServiceExport::new(&name, spec);
        export.metadata.annotations = Some(
            [(
                "klutch.anynines.com/source-spec-hash".to_string(),
                source_spec_hash(&export.spec),
            )]
            .into(),
        );
        let exports: Api<APIServiceExport> = Api::namespaced(provider.clone(), "cluster-export1");
        exports
            .patch(
                &name,
                &PatchParams::apply("klutch-test").force(),
                &Patch::Apply(&export),
            )
            .await
            .unwrap();
        let export = exports.get(&name).await.unwrap();

        // Konnector side: export -> consumer CRD owned by the binding; it serves the same API.
        let bindings: Api<APIServiceBinding> = Api::namespaced(consumer.clone(), "klutch-bind");
        let binding = APIServiceBinding::new(
            &name,
            APIServiceBindingSpec {
                kubeconfig_secret_ref: ClusterSecretKeyRef {
                    name: "kubeconfig-x".into(),
                    namespace: "klutch-bind".into(),
                    key: Default::default(),
                },
                permission_claims: vec![],
            },
        );
        let binding = bindings
            .patch(
                &name,
                &PatchParams::apply("klutch-test").force(),
                &Patch::Apply(&binding),
            )
            .await
            .unwrap();
        let consumer_crd = crd_from_export(&export, &binding).unwrap();
        let established = install_crd(&consumer, &consumer_crd).await.unwrap();
        assert!(
            is_owned_by(&established, &binding),
            "{name} is owned by its binding"
        );
        assert_eq!(
            established.spec.versions[0].schema, crd.spec.versions[0].schema,
            "{name}: same schema as the provider"
        );
        assert!(
            !is_owned_by(&crd, &binding),
            "the provider's CRD is foreign to the binding"
        );
    }
}

/// Regression: mappings that exist before the syncer starts arrive only in its initial list; the
/// map must be built when that list completes, not only on later changes.
#[tokio::test]
async fn mappings_that_exist_before_start_are_used() {
    init_logs();
    let (consumer, provider) = clusters_with_widgets().await;
    let cluster_ns = "cluster-sync2";
    let provider_ns = service_namespace(cluster_ns, "team-early");
    for (client, ns) in [
        (&provider, cluster_ns),
        (&provider, provider_ns.as_str()),
        (&consumer, "team-early"),
    ] {
        create_namespace(client, ns).await;
    }
    let mappings: Api<APIServiceNamespace> = Api::namespaced(provider.clone(), cluster_ns);
    mappings
        .create(
            &PostParams::default(),
            &APIServiceNamespace::new("team-early", klutch_sdk::api::APIServiceNamespaceSpec {}),
        )
        .await
        .unwrap();
    let status =
        json!({ "status": APIServiceNamespaceStatus { namespace: Some(provider_ns.clone()) } });
    mappings
        .patch_status(
            "team-early",
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let syncer = ResourceSyncer::new(consumer.clone(), provider.clone(), widgets(), cluster_ns);
    let task = tokio::spawn(syncer.run(async move {
        let _ = stopped.await;
    }));
    let ar = widgets();
    let mine: Api<DynamicObject> = Api::namespaced_with(consumer.clone(), "team-early", &ar);
    let theirs: Api<DynamicObject> = Api::namespaced_with(provider.clone(), &provider_ns, &ar);
    let mut w = DynamicObject::new("early", &ar);
    w.data = json!({ "spec": { "size": 7 } });
    mine.create(&PostParams::default(), &w).await.unwrap();
    let copy = eventually("the provider copy", || async {
        theirs.get_opt("early").await.unwrap()
    })
    .await;
    assert_eq!(copy.data["spec"]["size"], 7);
    let _ = stop.send(());
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

//! The generated CRDs on a real kube-apiserver: they install and become Established, Klutch's own
//! manifests are accepted, the apiserver applies Klutch's defaults, and the CEL rules reject what
//! Klutch rejects.

use std::path::Path;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use klutch_sdk::api::conditions::{self, Condition, Severity};
use klutch_sdk::api::export::{ExportSchema, ExportVersion, Scope};
use klutch_sdk::api::export_request::{ExportRequestPhase, ExportRequestResource};
use klutch_sdk::api::{
    APIServiceBinding, APIServiceBindingSpec, APIServiceBindingStatus, APIServiceExport,
    APIServiceExportRequest, APIServiceExportRequestSpec, APIServiceExportSpec,
    APIServiceExportTemplate, ClaimOwner, ClusterBinding, ClusterBindingSpec, ClusterSecretKeyRef,
    GroupResource, LocalSecretKeyRef, PermissionClaim,
};
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};

async fn cluster_with_crds() -> kube::Client {
    let env = TestEnv::shared()
        .await
        .expect("start the shared environment");
    let client = env["control-plane"].client().await.unwrap();
    for crd in klutch_sdk::api::crds() {
        install_crd(&client, &crd).await.unwrap();
    }
    for ns in ["crossplane-system", "cluster-x7k2p"] {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let _ = Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await;
    }
    client
}

fn rejection(err: kube::Error) -> String {
    match err {
        kube::Error::Api(status) if status.code == 422 => status.message,
        other => panic!("expected a 422 validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn klutch_manifests_are_accepted_and_defaulted() {
    let client = cluster_with_crds().await;
    let reference =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/klutch-v1.5/bind");
    let mut files: Vec<_> = std::fs::read_dir(reference.join("deploy/resources"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.to_string_lossy()
                .ends_with("_apiserviceexporttemplate.yaml")
        })
        .collect();
    files.push(reference.join("test/e2e/bind/fixtures/provider/exporttemplate-foo.yaml"));
    files.push(reference.join("test/e2e/bind/fixtures/provider/exporttemplate-mangodb.yaml"));
    assert!(files.len() >= 12, "{files:?}");
    for file in &files {
        let obj: DynamicObject =
            serde_saphyr::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let ns = obj
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<APIServiceExportTemplate> = Api::namespaced(client.clone(), &ns);
        let name = obj.metadata.name.clone().unwrap();
        api.patch(
            &name,
            &PatchParams::apply("klutch-test").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("{} rejected: {e}", file.display()));
        // Read back through the typed API: it deserialises, with the CRD's defaults applied.
        let typed = api.get(&name).await.unwrap();
        for claim in &typed.spec.permission_claims {
            assert_eq!(claim.selector.names, ["*"], "{}", file.display());
            assert!(claim.on_conflict.recreate_when_consumer_side_deleted);
        }
    }
    let foos = Api::<APIServiceExportTemplate>::namespaced(client.clone(), "default")
        .get("foos")
        .await
        .unwrap();
    assert_eq!(foos.spec.api_service_selector.group, "bar.io");
    assert_eq!(
        foos.spec.permission_claims[0].selector.owner,
        Some(ClaimOwner::Provider)
    );
    assert_eq!(foos.spec.permission_claims[0].group_resource.group, "");

    // An export request: the apiserver defaults its status to phase Pending.
    let requests: Api<APIServiceExportRequest> = Api::namespaced(client.clone(), "cluster-x7k2p");
    let request = APIServiceExportRequest::new(
        "postgresqlinstances.anynines.com",
        APIServiceExportRequestSpec {
            parameters: None,
            resources: vec![ExportRequestResource {
                group: "anynines.com".into(),
                resource: "postgresqlinstances".into(),
                versions: vec![],
                permission_claims: vec![PermissionClaim {
                    group_resource: GroupResource {
                        group: String::new(),
                        resource: "secrets".into(),
                    },
                    version: "v1".into(),
                    ..PermissionClaim::default()
                }],
            }],
        },
    );
    requests
        .create(&PostParams::default(), &request)
        .await
        .unwrap();
    let stored = requests
        .get("postgresqlinstances.anynines.com")
        .await
        .unwrap();
    assert_eq!(
        stored.status.as_ref().unwrap().phase,
        ExportRequestPhase::Pending
    );
    // ... and its resources are immutable.
    let mut changed = stored.clone();
    changed.spec.resources[0].resource = "mongodbinstances".into();
    changed.status = None;
    let err = requests
        .replace(
            "postgresqlinstances.anynines.com",
            &PostParams::default(),
            &changed,
        )
        .await
        .unwrap_err();
    assert!(rejection(err).contains("resources are immutable"));
}

#[tokio::test]
async fn cel_rules_reject_what_klutch_rejects() {
    let client = cluster_with_crds().await;
    let ns = "cluster-x7k2p";

    // ClusterBinding: a singleton named `cluster`, with an immutable secret reference.
    let bindings: Api<ClusterBinding> = Api::namespaced(client.clone(), ns);
    let spec = ClusterBindingSpec {
        kubeconfig_secret_ref: LocalSecretKeyRef {
            name: "kubeconfig".into(),
            key: Default::default(),
        },
        provider_pretty_name: "anynines".into(),
        service_provider_spec: None,
    };
    let err = bindings
        .create(
            &PostParams::default(),
            &ClusterBinding::new("other", spec.clone()),
        )
        .await
        .unwrap_err();
    assert!(rejection(err).contains("cluster binding name should be cluster"));
    bindings
        .create(
            &PostParams::default(),
            &ClusterBinding::new("cluster", spec.clone()),
        )
        .await
        .unwrap();
    let mut moved = bindings.get("cluster").await.unwrap();
    moved.spec.kubeconfig_secret_ref.name = "elsewhere".into();
    let err = bindings
        .replace("cluster", &PostParams::default(), &moved)
        .await
        .unwrap_err();
    assert!(rejection(err).contains("kubeconfigSecretRef is immutable"));
    let mut empty_name = ClusterBinding::new("cluster", spec);
    empty_name.spec.provider_pretty_name = String::new();
    let err = Api::<ClusterBinding>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &empty_name)
        .await
        .unwrap_err();
    assert!(rejection(err).contains("providerPrettyName"));

    // APIServiceExport: the name is `<plural>.<group>`, and cluster scope needs isolation.
    let exports: Api<APIServiceExport> = Api::namespaced(client.clone(), ns);
    let export_spec = |scope: Scope| APIServiceExportSpec {
        group: "mangodb.com".into(),
        names: klutch_sdk::api::export::CrdNames {
            kind: "MangoDB".into(),
            plural: "mangodbs".into(),
            ..Default::default()
        },
        scope,
        versions: vec![ExportVersion {
            name: "v1alpha1".into(),
            served: true,
            storage: true,
            deprecated: None,
            deprecation_warning: None,
            schema: ExportSchema {
                open_api_v3_schema: serde_json::json!({"type": "object"}),
            },
            subresources: None,
            additional_printer_columns: vec![],
        }],
        informer_scope: Scope::Cluster,
        cluster_scoped_isolation: None,
        permission_claims: vec![],
    };
    let err = exports
        .create(
            &PostParams::default(),
            &APIServiceExport::new("wrong.name", export_spec(Scope::Namespaced)),
        )
        .await
        .unwrap_err();
    // Klutch's (misleading) message for the name rule, kept for CRD equality.
    assert!(rejection(err).contains("informerScope is immutable"));
    let err = exports
        .create(
            &PostParams::default(),
            &APIServiceExport::new("mangodbs.mangodb.com", export_spec(Scope::Cluster)),
        )
        .await
        .unwrap_err();
    assert!(
        rejection(err)
            .contains("clusterScopedIsolation must be defined for cluster-scoped resources")
    );
    let created = exports
        .create(
            &PostParams::default(),
            &APIServiceExport::new("mangodbs.mangodb.com", export_spec(Scope::Namespaced)),
        )
        .await
        .unwrap();
    assert_eq!(
        created.spec.versions[0].schema.open_api_v3_schema,
        serde_json::json!({"type": "object"})
    );

    // Permission claims: donating and adopting at once is contradictory.
    let bindings: Api<APIServiceBinding> = Api::namespaced(client.clone(), "default");
    let claim = PermissionClaim {
        group_resource: GroupResource {
            group: String::new(),
            resource: "secrets".into(),
        },
        version: "v1".into(),
        auto_adopt: Some(true),
        auto_donate: Some(true),
        ..PermissionClaim::default()
    };
    let binding = APIServiceBinding::new(
        "mangodbs.mangodb.com",
        APIServiceBindingSpec {
            kubeconfig_secret_ref: ClusterSecretKeyRef {
                name: "kubeconfig-abc".into(),
                namespace: "klutch-bind".into(),
                key: Default::default(),
            },
            permission_claims: vec![klutch_sdk::api::AcceptablePermissionClaim {
                claim,
                state: klutch_sdk::api::ClaimState::Accepted,
            }],
        },
    );
    let err = bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap_err();
    assert!(rejection(err).contains("donate and adopt are mutually exclusive"));
}

#[tokio::test]
async fn status_conditions_round_trip_through_the_status_subresource() {
    let client = cluster_with_crds().await;
    let bindings: Api<APIServiceBinding> = Api::namespaced(client.clone(), "crossplane-system");
    let binding = APIServiceBinding::new(
        "postgresqlinstances.anynines.com",
        APIServiceBindingSpec {
            kubeconfig_secret_ref: ClusterSecretKeyRef {
                name: "kubeconfig-abc".into(),
                namespace: "klutch-bind".into(),
                key: Default::default(),
            },
            permission_claims: vec![],
        },
    );
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let now = Time("2026-11-30T12:00:00Z".parse().unwrap());
    let mut status = APIServiceBindingStatus {
        provider_pretty_name: Some("anynines".into()),
        conditions: vec![],
    };
    conditions::set(
        &mut status.conditions,
        Condition::true_("SecretValid", now.clone()),
    );
    conditions::set(
        &mut status.conditions,
        Condition::false_(
            "Connected",
            Severity::Warning,
            "APIServiceExportNotFound",
            "no export yet",
            now.clone(),
        ),
    );
    conditions::summarize_ready(&mut status.conditions, now);
    let patch = serde_json::json!({ "apiVersion": "klutch.anynines.com/v1alpha1", "kind": "APIServiceBinding", "status": status });
    bindings
        .patch_status(
            "postgresqlinstances.anynines.com",
            &PatchParams::apply("klutch-test").force(),
            &Patch::Apply(&patch),
        )
        .await
        .unwrap();
    let stored = bindings
        .get("postgresqlinstances.anynines.com")
        .await
        .unwrap();
    assert_eq!(stored.status.as_ref(), Some(&status));
    let ready = conditions::get(&stored.status.unwrap().conditions, "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready.reason.as_deref(), Some("APIServiceExportNotFound"));
}

//! CRD → APIServiceExport → consumer CRD conversions (`klutch_sdk::api::convert`) on the shared
//! test CRD of `klutch_sdk::testenv::fixtures`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition,
};
use klutch_sdk::api::claims::ClusterSecretKeyRef;
use klutch_sdk::api::convert::{
    Error, crd_from_export, export_spec_from_crd, is_owned_by, source_spec_hash,
};
use klutch_sdk::api::export::{ClusterScopedIsolation, Scope};
use klutch_sdk::api::{
    APIServiceBinding, APIServiceBindingSpec, APIServiceExport, PermissionClaim,
};
use klutch_sdk::testenv::fixtures::TestCrd;

/// Klutch's MangoDB with a short name, a printer column, a typed `spec.tier` and an unserved
/// second version.
fn mangodb_crd() -> CustomResourceDefinition {
    TestCrd::mangodb()
        .short_name("mdb")
        .status_subresource()
        .printer_column("Tier", "string", ".spec.tier")
        .tier()
        .other_version("v1beta1", false)
        .build()
}

fn binding(uid: Option<&str>) -> APIServiceBinding {
    let mut b = APIServiceBinding::new(
        "mangodbs.mangodb.com",
        APIServiceBindingSpec {
            kubeconfig_secret_ref: ClusterSecretKeyRef {
                name: "k".into(),
                namespace: "klutch-bind".into(),
                key: Default::default(),
            },
            permission_claims: vec![],
        },
    );
    b.metadata.uid = uid.map(str::to_owned);
    b
}

#[test]
fn crd_to_export_to_crd_keeps_the_served_api() {
    let spec = export_spec_from_crd(
        &mangodb_crd(),
        vec![],
        Scope::Namespaced,
        Some(ClusterScopedIsolation::Prefixed),
    )
    .unwrap();
    assert_eq!(spec.versions.len(), 1, "unserved versions are not exported");
    assert_eq!(
        spec.cluster_scoped_isolation, None,
        "isolation only for cluster-scoped CRDs"
    );
    assert_eq!(spec.names.short_names, ["mdb"]);
    let export = APIServiceExport::new("mangodbs.mangodb.com", spec);
    let b = binding(Some("uid-1"));
    let crd = crd_from_export(&export, &b).unwrap();
    let original = mangodb_crd();
    assert_eq!(crd.spec.versions[0], original.spec.versions[0]);
    assert_eq!(crd.spec.names, original.spec.names);
    assert_eq!(crd.spec.conversion.as_ref().unwrap().strategy, "None");
    assert!(is_owned_by(&crd, &b));
    assert!(
        !is_owned_by(&crd, &binding(Some("uid-2"))),
        "another binding of the same name"
    );
    assert!(
        !is_owned_by(&original, &b),
        "a CRD without our owner reference is foreign"
    );
}

#[test]
fn webhook_crds_export_only_the_storage_version_and_bad_crds_are_errors() {
    let mut crd = mangodb_crd();
    crd.spec.versions[1].served = true;
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: None,
    });
    let spec = export_spec_from_crd(&crd, vec![], Scope::Namespaced, None).unwrap();
    assert_eq!(
        spec.versions
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        ["v1alpha1"]
    );

    let mut no_schema = mangodb_crd();
    no_schema.spec.versions[0].schema = None;
    let err = export_spec_from_crd(&no_schema, vec![], Scope::Namespaced, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "version v1alpha1 of CRD mangodbs.mangodb.com has no openAPIV3Schema"
    );

    let mut none_served = mangodb_crd();
    none_served.spec.versions[0].served = false;
    assert!(matches!(
        export_spec_from_crd(&none_served, vec![], Scope::Namespaced, None),
        Err(Error::NoVersion { .. })
    ));

    let mut odd = mangodb_crd();
    odd.spec.scope = "Galactic".into();
    assert!(matches!(
        export_spec_from_crd(&odd, vec![], Scope::Namespaced, None),
        Err(Error::UnknownScope { .. })
    ));
}

#[test]
fn the_hash_follows_the_crd_part_only() {
    let spec = export_spec_from_crd(&mangodb_crd(), vec![], Scope::Namespaced, None).unwrap();
    let hash = source_spec_hash(&spec);
    assert!(!hash.is_empty() && hash.chars().all(|c| c.is_ascii_alphanumeric()));
    let mut with_claims = spec.clone();
    with_claims
        .permission_claims
        .push(PermissionClaim::default());
    with_claims.informer_scope = Scope::Cluster;
    assert_eq!(
        source_spec_hash(&with_claims),
        hash,
        "binding settings do not change the hash"
    );
    let mut changed = spec;
    changed.versions[0].schema.open_api_v3_schema["properties"]["spec"]["properties"]["size"] =
        serde_json::json!({"type": "integer"});
    assert_ne!(source_spec_hash(&changed), hash);
}

//! The generated Kubernetes manifests, pinned by a snapshot.

#[test]
fn manifests_with_placeholders() {
    let yaml = klutch_sdk::deploy::backend::manifests_yaml(
        &klutch_sdk::deploy::backend::ManifestOptions::placeholders(),
    )
    .unwrap();
    for var in [
        "${IMAGE}",
        "${OIDC_ISSUER_URL}",
        "${OIDC_CLIENT_ID}",
        "${BACKEND_URL}",
        "${EXTERNAL_ADDRESS}",
        "${OIDC_CLIENT_SECRET}",
    ] {
        assert!(yaml.contains(var), "{var}");
    }
    assert!(
        !yaml.contains("cluster-admin"),
        "an explicit ClusterRole, never cluster-admin"
    );
    insta::assert_snapshot!(yaml);
}

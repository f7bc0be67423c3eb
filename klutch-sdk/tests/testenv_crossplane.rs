//! Crossplane core and function-patch-and-transform as local processes on a test cluster
//! (`TestEnvBuilder::crossplane`): a claim of a small XRD is composed through the function into
//! a resource, reports Ready, survives a core restart and is deleted with its composed resource.

use std::time::Duration;

use klutch_sdk::testenv::fixtures::TestCrd;
use klutch_sdk::testenv::{TestEnv, eventually, install_crd};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

async fn apply(client: &kube::Client, resource: &ApiResource, body: serde_json::Value) {
    let obj: DynamicObject = serde_json::from_value(body).unwrap();
    let name = obj.metadata.name.clone().unwrap();
    let api: Api<DynamicObject> = match &obj.metadata.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    api.patch(
        &name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {} {name}: {e}", resource.kind));
}

#[tokio::test]
async fn a_claim_is_composed_through_the_function_and_deleted_again() {
    let env = TestEnv::builder()
        .cluster("cp")
        .crossplane("cp")
        .start()
        .await
        .expect("start a cluster with Crossplane");
    let crossplane = env.crossplane("cp").expect("crossplane on cp");
    assert!(crossplane.core_running());
    assert!(env.crossplane("other").is_none());
    let client = env["cp"].client().await.unwrap();

    // The composed kind: a cluster-scoped CRD with a free spec and status.
    let gadget = TestCrd::new("composed.klutch.test", "gadgets", "Gadget")
        .cluster_scoped()
        .version("v1")
        .status_subresource()
        .preserve_unknown_fields()
        .build();
    install_crd(&client, &gadget).await.unwrap();
    let xrds = ar(
        "apiextensions.crossplane.io",
        "v1",
        "CompositeResourceDefinition",
        "compositeresourcedefinitions",
    );
    apply(&client, &xrds, json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "CompositeResourceDefinition",
        "metadata": { "name": "xwidgets.claims.klutch.test" },
        "spec": {
            "group": "claims.klutch.test",
            "names": { "kind": "XWidget", "plural": "xwidgets" },
            "claimNames": { "kind": "Widget", "plural": "widgets" },
            "versions": [{
                "name": "v1", "served": true, "referenceable": true,
                "schema": { "openAPIV3Schema": { "type": "object", "properties": {
                    "spec": { "type": "object", "properties": { "size": { "type": "integer" } } }
                } } }
            }]
        }
    })).await;
    let compositions = ar(
        "apiextensions.crossplane.io",
        "v1",
        "Composition",
        "compositions",
    );
    apply(&client, &compositions, json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": { "name": "widgets" },
        "spec": {
            "compositeTypeRef": { "apiVersion": "claims.klutch.test/v1", "kind": "XWidget" },
            "mode": "Pipeline",
            "pipeline": [{
                "step": "patch-and-transform",
                "functionRef": { "name": klutch_sdk::testenv::FUNCTION_NAME },
                "input": {
                    "apiVersion": "pt.fn.crossplane.io/v1beta1",
                    "kind": "Resources",
                    "resources": [{
                        "name": "gadget",
                        "base": { "apiVersion": "composed.klutch.test/v1", "kind": "Gadget", "spec": {} },
                        "patches": [{ "type": "FromCompositeFieldPath", "fromFieldPath": "spec.size", "toFieldPath": "spec.size" }],
                        "readinessChecks": [{ "type": "None" }]
                    }]
                }
            }]
        }
    })).await;

    let claims_ar = ar("claims.klutch.test", "v1", "Widget", "widgets");
    let claims: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &claims_ar);
    let claim: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "claims.klutch.test/v1", "kind": "Widget",
        "metadata": { "name": "w1", "namespace": "default" },
        "spec": { "size": 3, "compositionRef": { "name": "widgets" } }
    }))
    .unwrap();
    // Core establishes the claim CRD from the XRD.
    eventually("the claim kind to be served", WAIT, || async {
        claims.create(&PostParams::default(), &claim).await.ok()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", crossplane.log_tails(30)));

    let gadgets: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ar("composed.klutch.test", "v1", "Gadget", "gadgets"),
    );
    let composed = eventually("the composed Gadget", WAIT, || async {
        gadgets
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .next()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", crossplane.log_tails(30)));
    assert_eq!(
        composed.data["spec"]["size"], 3,
        "patched from the claim: {composed:?}"
    );
    let ready = |o: &DynamicObject| {
        o.data["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    };
    eventually("the claim to be Ready", WAIT, || async {
        claims.get("w1").await.ok().filter(|o| ready(o))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", crossplane.log_tails(30)));

    // A restart of core: changes made meanwhile are picked up afterwards.
    crossplane.stop_core().await;
    let first_run = std::fs::read(crossplane.core_log()).unwrap();
    assert!(!first_run.is_empty());
    assert!(!crossplane.core_running());
    claims
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "size": 5 } })),
        )
        .await
        .unwrap();
    crossplane.start_core().await.expect("core comes back");
    eventually("the new size on the composed Gadget", WAIT, || async {
        let g = gadgets.get(composed.metadata.name.as_deref()?).await.ok()?;
        (g.data["spec"]["size"] == 5).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", crossplane.log_tails(30)));

    claims.delete("w1", &DeleteParams::default()).await.unwrap();
    eventually("the claim and its Gadget to be gone", WAIT, || async {
        let left = gadgets.list(&Default::default()).await.ok()?.items.len();
        (left == 0 && claims.get_opt("w1").await.ok()?.is_none()).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", crossplane.log_tails(30)));
    let log = std::fs::read(crossplane.core_log()).unwrap();
    assert!(
        log.starts_with(&first_run) && log.len() > first_run.len(),
        "a restart appends to core's log: {}",
        crossplane.core_log().display()
    );
}

#[tokio::test]
async fn crossplane_on_an_unknown_cluster_is_a_config_error() {
    let err = TestEnv::builder()
        .cluster("cp")
        .crossplane("nope")
        .start()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("there is no cluster \"nope\""),
        "{err}"
    );
}

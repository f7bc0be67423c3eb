//! The reference backend end to end against a real kube-apiserver and a real Dex: the browser
//! flow, binding spaces, RBAC, export requests, export refresh and service namespaces.

mod backend_common;

use std::time::Duration;

use backend_common::{Fixture, browser_bind, eventually, fixture, tenant_client};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::export_request::ExportRequestPhase;
use klutch_sdk::api::wellknown::{IDENTITY_ANNOTATION, SOURCE_SPEC_HASH_ANNOTATION};
use klutch_sdk::api::{
    APIServiceExport, APIServiceExportRequest, APIServiceNamespace, ClusterBinding,
};
use klutch_sdk::testenv::browser::Browser;
use klutch_sdk::testenv::fixtures::TestCrd;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

fn request_of(response: &klutch_sdk::api::wire::BindingResponse) -> APIServiceExportRequest {
    response.requests[0].to_export_request()
}

async fn wait_phase(
    api: &Api<APIServiceExportRequest>,
    name: &str,
    phase: ExportRequestPhase,
) -> APIServiceExportRequest {
    eventually(&format!("request {name} {phase:?}"), || async {
        api.get(name)
            .await
            .ok()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.phase == phase))
    })
    .await
}

#[tokio::test]
async fn export_serves_the_binding_provider() {
    let f = fixture().await;
    let mut b = Browser::new().unwrap();
    let page = b.get(&format!("{}/export", f.base)).await.unwrap();
    assert_eq!(page.status, 200);
    let mut doc: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(
        doc["authenticationMethods"][0]["oauth2CodeGrant"]["authenticatedURL"],
        format!("{}/authorize", f.base)
    );
    assert_eq!(
        doc["authenticationMethods"][1]["oauth2DeviceGrant"]["tokenURL"],
        format!("{}/device/token", f.base)
    );
    doc["version"] = "<version>".into();
    let text = serde_json::to_string_pretty(&doc)
        .unwrap()
        .replace(&f.base, "http://<backend>");
    insta::assert_snapshot!("binding_provider", text);
    let health = b.get(&format!("{}/healthz", f.base)).await.unwrap();
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn browser_flow_yields_a_working_kubeconfig_and_an_export() {
    let f: &Fixture = fixture().await;
    let admin = f.admin().await;
    let (_, response) = browser_bind(f, "alice@example.com", "cidAl1", "mangodbs").await;

    // The protocol JSON, with the volatile parts masked.
    let mut json = serde_json::to_value(&response).unwrap();
    json["kubeconfig"] = "<kubeconfig>".into();
    json["authentication"]["oauth2CodeGrant"]["sid"] = "<sid>".into();
    json["authentication"]["oauth2CodeGrant"]["id"] = "<issuer>/<sub>".into();
    insta::assert_snapshot!(
        "binding_response",
        serde_json::to_string_pretty(&json).unwrap()
    );

    // The kubeconfig: one cluster/context/user named default, namespace = cluster namespace.
    let yaml = String::from_utf8(response.kubeconfig.clone()).unwrap();
    assert!(yaml.contains("current-context: default"), "{yaml}");
    let (tenant, ns) = tenant_client(&response).await;
    assert!(ns.starts_with("cluster-"), "{ns}");
    let namespace = Api::<Namespace>::all(admin.clone()).get(&ns).await.unwrap();
    assert!(namespace.annotations()[IDENTITY_ANNOTATION].ends_with("#cidAl1"));
    let binding = Api::<ClusterBinding>::namespaced(admin.clone(), &ns)
        .get("cluster")
        .await
        .unwrap();
    assert_eq!(binding.spec.provider_pretty_name, "Test Provider");
    let stored = Api::<Secret>::namespaced(admin.clone(), &ns)
        .get("kubeconfig")
        .await
        .unwrap();
    assert_eq!(stored.data.unwrap()["kubeconfig"].0, response.kubeconfig);

    // The tenant creates its request with the issued kubeconfig; the backend exports.
    let requests = Api::<APIServiceExportRequest>::namespaced(tenant.clone(), &ns);
    requests
        .create(&PostParams::default(), &request_of(&response))
        .await
        .expect("tenant creates its request");
    let done = wait_phase(
        &requests,
        "mangodbs.mangodb.com",
        ExportRequestPhase::Succeeded,
    )
    .await;
    let status = done.status.unwrap();
    assert!(status.conditions.iter().any(|c| c.type_ == "ExportsReady"));
    let export = Api::<APIServiceExport>::namespaced(tenant.clone(), &ns)
        .get("mangodbs.mangodb.com")
        .await
        .expect("tenant reads its export");
    assert!(
        export
            .annotations()
            .contains_key(SOURCE_SPEC_HASH_ANNOTATION)
    );
    assert_eq!(
        export.spec.permission_claims.len(),
        1,
        "claims come from the template"
    );
    assert_eq!(export.spec.names.plural, "mangodbs");

    // The tenant's RBAC grows with the export: it may use mangodbs in a service namespace.
    let asns = Api::<APIServiceNamespace>::namespaced(tenant.clone(), &ns);
    asns.create(
        &PostParams::default(),
        &APIServiceNamespace::new("default", Default::default()),
    )
    .await
    .expect("tenant creates an APIServiceNamespace");
    let service_ns = eventually("service namespace assigned", || async {
        asns.get("default")
            .await
            .ok()
            .and_then(|a| a.status.and_then(|s| s.namespace))
    })
    .await;
    assert_eq!(service_ns, format!("{ns}-default"));
    let mangodbs = kube::api::ApiResource {
        group: "mangodb.com".into(),
        version: "v1alpha1".into(),
        api_version: "mangodb.com/v1alpha1".into(),
        kind: "MangoDB".into(),
        plural: "mangodbs".into(),
    };
    let tenant_dbs: Api<kube::api::DynamicObject> =
        Api::namespaced_with(tenant.clone(), &service_ns, &mangodbs);
    let db: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "mangodb.com/v1alpha1", "kind": "MangoDB",
        "metadata": { "name": "db1" }, "spec": { "tier": "Dedicated" }
    }))
    .unwrap();
    eventually(
        "tenant may create mangodbs in its service namespace",
        || async { tenant_dbs.create(&PostParams::default(), &db).await.ok() },
    )
    .await;
    // ...but nothing else there.
    let err = Api::<ConfigMap>::namespaced(tenant.clone(), &service_ns)
        .list(&Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 403));

    // Deleting the APIServiceNamespace deletes the service namespace it points back to.
    asns.delete("default", &DeleteParams::default())
        .await
        .unwrap();
    eventually("service namespace deleted", || async {
        match Api::<Namespace>::all(admin.clone())
            .get_opt(&service_ns)
            .await
            .unwrap()
        {
            None => Some(()),
            Some(n) if n.metadata.deletion_timestamp.is_some() => Some(()),
            Some(_) => None,
        }
    })
    .await;

    // Rebinding the same identity and cluster reuses the space; another cluster gets another one.
    let (_, again) = browser_bind(f, "alice@example.com", "cidAl1", "mangodbs").await;
    assert_eq!(tenant_client(&again).await.1, ns);
    let (_, other) = browser_bind(f, "alice@example.com", "cidAl2", "mangodbs").await;
    assert_ne!(tenant_client(&other).await.1, ns);

    // In Namespaced consumer scope no tenant ClusterRoleBinding existed at any moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        f.crbs_seen.lock().unwrap().is_empty(),
        "{:?}",
        f.crbs_seen.lock().unwrap()
    );
}

#[tokio::test]
async fn tenants_are_isolated_by_the_real_apiserver() {
    let f = fixture().await;
    let (_, a) = browser_bind(f, "bob@example.com", "cidBo1", "mangodbs").await;
    let (_, b) = browser_bind(f, "carol@example.com", "cidCa1", "mangodbs").await;
    let (client_a, ns_a) = tenant_client(&a).await;
    let (client_b, ns_b) = tenant_client(&b).await;
    assert_ne!(ns_a, ns_b);
    // B's request becomes an export, so B has a service namespace with rights in it.
    let requests_b = Api::<APIServiceExportRequest>::namespaced(client_b.clone(), &ns_b);
    requests_b
        .create(&PostParams::default(), &request_of(&b))
        .await
        .unwrap();
    wait_phase(
        &requests_b,
        "mangodbs.mangodb.com",
        ExportRequestPhase::Succeeded,
    )
    .await;
    let asns_b = Api::<APIServiceNamespace>::namespaced(client_b.clone(), &ns_b);
    asns_b
        .create(
            &PostParams::default(),
            &APIServiceNamespace::new("apps", Default::default()),
        )
        .await
        .unwrap();
    let service_b = eventually("B's service namespace", || async {
        asns_b
            .get("apps")
            .await
            .ok()
            .and_then(|a| a.status.and_then(|s| s.namespace))
    })
    .await;

    let forbidden =
        |r: Result<_, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
    // A reads or writes nothing of B's: secrets, requests, exports, namespaces, bindings.
    assert!(forbidden(
        Api::<Secret>::namespaced(client_a.clone(), &ns_b)
            .list(&Default::default())
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        Api::<Secret>::namespaced(client_a.clone(), &ns_b)
            .get("kubeconfig")
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        Api::<APIServiceExportRequest>::namespaced(client_a.clone(), &ns_b)
            .create(&PostParams::default(), &request_of(&a))
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        Api::<ClusterBinding>::namespaced(client_a.clone(), &ns_b)
            .get("cluster")
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        Api::<APIServiceNamespace>::namespaced(client_a.clone(), &ns_b)
            .list(&Default::default())
            .await
            .map(|_| ())
    ));
    let mangodbs = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("mangodb.com", "v1alpha1", "MangoDB"),
        "mangodbs",
    );
    assert!(forbidden(
        Api::<kube::api::DynamicObject>::namespaced_with(client_a.clone(), &service_b, &mangodbs)
            .list(&Default::default())
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        Api::<Namespace>::all(client_a.clone())
            .list(&Default::default())
            .await
            .map(|_| ())
    ));
    // B itself may list there.
    eventually("B may list its mangodbs", || async {
        Api::<kube::api::DynamicObject>::namespaced_with(client_b.clone(), &service_b, &mangodbs)
            .list(&Default::default())
            .await
            .ok()
    })
    .await;
}

#[tokio::test]
async fn requests_for_unoffered_resources_fail_terminally() {
    let f = fixture().await;
    let admin = f.admin().await;
    // A CRD without a template.
    klutch_sdk::testenv::install_crd(
        &admin,
        &TestCrd::new("hidden.example.com", "secrets2", "Secret2")
            .status_subresource()
            .tier()
            .build(),
    )
    .await
    .unwrap();
    let (_, response) = browser_bind(f, "dave@example.com", "cidDa1", "mangodbs").await;
    let (tenant, ns) = tenant_client(&response).await;
    let requests = Api::<APIServiceExportRequest>::namespaced(tenant, &ns);
    let mut req = request_of(&response);
    req.metadata.name = Some("secrets2.hidden.example.com".into());
    req.spec.resources[0].group = "hidden.example.com".into();
    req.spec.resources[0].resource = "secrets2".into();
    requests.create(&PostParams::default(), &req).await.unwrap();
    let failed = wait_phase(
        &requests,
        "secrets2.hidden.example.com",
        ExportRequestPhase::Failed,
    )
    .await;
    let status = failed.status.unwrap();
    assert_eq!(
        status.terminal_message.as_deref(),
        Some("secrets2.hidden.example.com is not offered by this backend")
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "ExportsReady")
        .unwrap();
    assert_eq!(ready.reason.as_deref(), Some("NotOffered"));
    assert!(
        Api::<APIServiceExport>::namespaced(admin, &ns)
            .get_opt("secrets2.hidden.example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn exports_follow_crd_changes_and_deletion() {
    let f = fixture().await;
    let admin = f.admin().await;
    let crds = Api::<CustomResourceDefinition>::all(admin.clone());
    klutch_sdk::testenv::install_crd(
        &admin,
        &TestCrd::new("refresh.example.com", "gadgets", "Gadget")
            .status_subresource()
            .tier()
            .build(),
    )
    .await
    .unwrap();
    backend_common::template(
        &admin,
        "gadgets",
        "refresh.example.com",
        "gadgets",
        serde_json::json!([]),
    )
    .await;
    let (_, response) = browser_bind(f, "alice@example.com", "cidRf1", "gadgets").await;
    let (tenant, ns) = tenant_client(&response).await;
    let requests = Api::<APIServiceExportRequest>::namespaced(tenant, &ns);
    requests
        .create(&PostParams::default(), &request_of(&response))
        .await
        .unwrap();
    wait_phase(
        &requests,
        "gadgets.refresh.example.com",
        ExportRequestPhase::Succeeded,
    )
    .await;
    let exports = Api::<APIServiceExport>::namespaced(admin.clone(), &ns);
    let before = exports.get("gadgets.refresh.example.com").await.unwrap();
    let hash = before.annotations()[SOURCE_SPEC_HASH_ANNOTATION].clone();

    // A schema change on the provider CRD reaches the export.
    let patch = serde_json::json!({ "spec": { "versions": [{
        "name": "v1alpha1", "served": true, "storage": true, "subresources": { "status": {} },
        "schema": { "openAPIV3Schema": { "type": "object", "properties": {
            "spec": { "type": "object", "properties": {
                "tier": { "type": "string" }, "size": { "type": "integer" } } } } } }
    }] } });
    crds.patch(
        "gadgets.refresh.example.com",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let after = eventually("export refreshed", || async {
        exports
            .get("gadgets.refresh.example.com")
            .await
            .ok()
            .filter(|e| e.annotations().get(SOURCE_SPEC_HASH_ANNOTATION) != Some(&hash))
    })
    .await;
    let schema = &after.spec.versions[0].schema.open_api_v3_schema;
    assert_eq!(
        schema["properties"]["spec"]["properties"]["size"]["type"],
        "integer"
    );
    eventually("ProviderInSync", || async {
        exports
            .get("gadgets.refresh.example.com")
            .await
            .ok()
            .filter(|e| {
                e.status.as_ref().is_some_and(|s| {
                    s.conditions.iter().any(|c| {
                        c.type_ == "ProviderInSync"
                            && c.status == klutch_sdk::api::ConditionStatus::True
                    })
                })
            })
    })
    .await;

    // Deleting the CRD deletes the export.
    crds.delete("gadgets.refresh.example.com", &DeleteParams::default())
        .await
        .unwrap();
    eventually("export deleted", || async {
        exports
            .get_opt("gadgets.refresh.example.com")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn cluster_binding_health_follows_heartbeats() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let f = fixture().await;
    let admin = f.admin().await;
    let (_, response) = browser_bind(f, "carol@example.com", "cidHb1", "mangodbs").await;
    let (tenant, ns) = tenant_client(&response).await;
    let bindings = Api::<ClusterBinding>::namespaced(tenant, &ns);
    let condition = |reason: Option<&'static str>| {
        let bindings = bindings.clone();
        async move {
            eventually(&format!("Healthy {reason:?}"), || async {
                let b = bindings.get("cluster").await.ok()?;
                let conds = b.status?.conditions;
                let healthy = conds.iter().find(|c| c.type_ == "Healthy")?;
                (healthy.reason.as_deref() == reason).then(|| conds.clone())
            })
            .await
        }
    };
    condition(Some("FirstHeartbeatPending")).await;
    // The konnector's heartbeat, with the tenant's own credentials.
    let beat = |age_secs: i64| {
        let t = k8s_openapi::jiff::Timestamp::now()
            - k8s_openapi::jiff::SignedDuration::from_secs(age_secs);
        serde_json::json!({ "status": { "lastHeartbeatTime": Time(t), "heartbeatInterval": "5m0s", "konnectorVersion": "v0.1.0" } })
    };
    bindings
        .patch_status("cluster", &PatchParams::default(), &Patch::Merge(&beat(0)))
        .await
        .expect("the tenant may heartbeat");
    let conds = condition(None).await;
    let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        ready.status,
        klutch_sdk::api::ConditionStatus::True,
        "{conds:?}"
    );
    bindings
        .patch_status(
            "cluster",
            &PatchParams::default(),
            &Patch::Merge(&beat(3600)),
        )
        .await
        .unwrap();
    condition(Some("HeartbeatTimeout")).await;
    bindings
        .patch_status(
            "cluster",
            &PatchParams::default(),
            &Patch::Merge(&beat(-60)),
        )
        .await
        .unwrap();
    condition(Some("HeartbeatTimeDrift")).await;
    let _ = admin;
}

#[tokio::test]
async fn requests_for_missing_crds_fail_after_a_while_and_every_request_is_collected() {
    let f = fixture().await;
    let admin = f.admin().await;
    backend_common::template(
        &admin,
        "ghosts",
        "missing.example.com",
        "ghosts",
        serde_json::json!([]),
    )
    .await;
    let (_, response) = browser_bind(f, "dave@example.com", "cidGh1", "mangodbs").await;
    let (tenant, ns) = tenant_client(&response).await;
    let requests = Api::<APIServiceExportRequest>::namespaced(tenant, &ns);
    let mut req = request_of(&response);
    req.metadata.name = Some("ghosts.missing.example.com".into());
    req.spec.resources[0].group = "missing.example.com".into();
    req.spec.resources[0].resource = "ghosts".into();
    requests.create(&PostParams::default(), &req).await.unwrap();
    // Retried with ExportsReady=False CRDNotFound, then failed for good with its message.
    eventually("CRDNotFound", || async {
        requests
            .get("ghosts.missing.example.com")
            .await
            .ok()
            .filter(|r| {
                r.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.reason.as_deref() == Some("CRDNotFound"))
                })
            })
    })
    .await;
    let failed = wait_phase(
        &requests,
        "ghosts.missing.example.com",
        ExportRequestPhase::Failed,
    )
    .await;
    assert_eq!(
        failed.status.unwrap().terminal_message.as_deref(),
        Some("CustomResourceDefinition ghosts.missing.example.com not found")
    );
    // Requests of every phase are collected (the tests shorten the spec's 10 minutes).
    eventually("failed request collected", || async {
        requests
            .get_opt("ghosts.missing.example.com")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

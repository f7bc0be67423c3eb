//! ServiceInstance against a real kube-apiserver and the fake a9s broker: lifecycle, updates
//! without loops, deletion that waits for deprovisioning, broker faults, a provider restart
//! mid-provision, observe-only and orphan policies, broken ProviderConfigs.

mod common;

use std::collections::BTreeMap;

use common::*;
use klutch_a9s::credentials::DataServiceKind;
use klutch_osb::testing::Route;
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use provider_anynines::api::{
    ProviderConfigUsage, Reference, ResourceSpec, ServiceInstance, ServiceInstanceParameters,
    ServiceInstanceSpec,
};
use provider_anynines::managed::meta;

fn instance(w: &World, name: &str, pc: &str, plan: &str) -> ServiceInstance {
    let mut si = ServiceInstance::new(
        name,
        ServiceInstanceSpec {
            for_provider: ServiceInstanceParameters {
                service_name: "fake-db".into(),
                plan_name: plan.into(),
                accepts_incomplete: true,
                organization_guid: "org-1".into(),
                space_guid: "space-1".into(),
                parameters: Some(BTreeMap::from([(
                    "max_connections".to_owned(),
                    serde_json::json!(100),
                )])),
                context: None,
                originating_identity: None,
            },
            resource: ResourceSpec {
                provider_config_ref: Reference::named(pc),
                ..ResourceSpec::default()
            },
        },
    );
    si.metadata.labels = Some(w.labels(name));
    si
}

fn instance_id(si: &ServiceInstance) -> String {
    si.status
        .as_ref()
        .and_then(|s| s.at_provider.as_ref())
        .and_then(|a| a.instance_id.clone())
        .expect("instance id")
}

#[tokio::test]
async fn lifecycle_provision_update_delete() {
    let w = World::new("si-life").await;
    let broker = async_broker(DataServiceKind::Postgresql).await;
    let pc = w.broker_config(&broker).await;
    let provider = w.start(w.options());
    let name = w.name("pg");
    w.create(&instance(&w, &name, &pc, "small")).await;

    let si = w
        .wait_condition::<ServiceInstance>(&name, "Ready", "True", Some("Available"))
        .await;
    let id = instance_id(&si);
    assert_eq!(si.annotations().get(meta::EXTERNAL_NAME), Some(&id));
    assert!(si.finalizers().iter().any(|f| f == meta::FINALIZER));
    assert_eq!(condition(&si, "Synced").reason, "ReconcileSuccess");
    let at = si.status.as_ref().unwrap().at_provider.clone().unwrap();
    assert_eq!(at.plan_id.as_deref(), Some("small-id"));
    assert_eq!(at.service_id.as_deref(), Some("fake-db-id"));
    assert_eq!(at.state.as_deref(), Some("provisioned"));
    assert_eq!(
        at.parameters.unwrap()["max_connections"],
        serde_json::json!(100)
    );
    assert!(si.status.as_ref().unwrap().pending_operation.is_none());
    assert_eq!(broker.osb().count(Route::Provision), 1);
    let put = broker
        .osb()
        .requests()
        .into_iter()
        .find(|r| r.route == Route::Provision)
        .unwrap();
    assert_eq!(put.query_param("accepts_incomplete"), Some("true"));
    let body = put.body.unwrap();
    assert_eq!(
        body["context"],
        serde_json::json!({"organization_guid": "org-1", "space_guid": "space-1"})
    );
    assert_eq!(body["organization_guid"], "org-1");

    // ProviderConfigUsage named after the UID, owned by the MR.
    let usage = Api::<ProviderConfigUsage>::all(w.client.clone())
        .get(&si.uid().unwrap())
        .await
        .unwrap();
    assert_eq!(usage.provider_config_ref.name, pc);
    assert_eq!(
        usage.metadata.labels.unwrap()[meta::PROVIDER_CONFIG_LABEL],
        pc
    );
    assert_eq!(usage.resource_ref.kind, "ServiceInstance");
    assert_eq!(
        usage.metadata.owner_references.unwrap()[0].uid,
        si.uid().unwrap()
    );

    // A plan change plus a parameter change: one PATCH with only what changed.
    let api: Api<ServiceInstance> = Api::all(w.client.clone());
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"forProvider": {"planName": "large", "parameters": {"max_connections": 100.0, "work_mem": "4MB"}}}})),
    )
    .await
    .unwrap();
    w.wait::<ServiceInstance>(&name, "plan large observed", |o| {
        o.and_then(|o| o.status.as_ref()?.at_provider.as_ref()?.plan_id.clone())
            .as_deref()
            == Some("large-id")
            && o.is_some_and(conditions_ok)
    })
    .await;
    let updates: Vec<_> = broker
        .osb()
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::Update)
        .collect();
    assert_eq!(updates.len(), 1, "exactly one update");
    let body = updates[0].body.clone().unwrap();
    assert_eq!(body["plan_id"], "large-id");
    assert_eq!(body["previous_values"]["plan_id"], "small-id");
    assert_eq!(
        body["parameters"],
        serde_json::json!({"work_mem": "4MB"}),
        "only the changed key"
    );

    // Several more reconciles (poll 3 s) must not send another update.
    let before = provider.metrics.total_requests();
    w.wait::<ServiceInstance>(&name, "more reconciles", |_| {
        provider.metrics.total_requests() >= before + 6
    })
    .await;
    assert_eq!(broker.osb().count(Route::Update), 1, "no update loop");

    // Deletion waits for the deprovision and leaves nothing behind.
    w.delete::<ServiceInstance>(&name).await;
    w.wait_gone::<ServiceInstance>(&name).await;
    assert_eq!(broker.instance_state(&id).as_deref(), Some("deleted"));
    assert!(!broker.osb().has_instance(&id));
    assert_eq!(broker.osb().count(Route::Deprovision), 1);
    assert_eq!(broker.osb().count(Route::Provision), 1);
    provider.stop().await;
}

fn conditions_ok(o: &ServiceInstance) -> bool {
    use provider_anynines::managed::Managed;
    use provider_anynines::managed::conditions::is_true;
    is_true(o.conditions(), "Ready") && is_true(o.conditions(), "Synced")
}

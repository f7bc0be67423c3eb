//! ServiceInstance against a real kube-apiserver and the fake a9s broker: lifecycle, updates
//! without loops, deletion that waits for deprovisioning, broker faults, a provider restart
//! mid-provision, observe-only and orphan policies, broken ProviderConfigs.

mod common;

use std::collections::BTreeMap;

use common::*;
use klutch_a9s::credentials::DataServiceKind;
use klutch_a9s::provider::api::{
    DeletionPolicy, ManagementAction, ProviderConfigUsage, Reference, ResourceSpec,
    ServiceInstance, ServiceInstanceParameters, ServiceInstanceSpec,
};
use klutch_a9s::provider::meta;
use klutch_osb::testing::Route;
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};

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
    let usage =
        Api::<ProviderConfigUsage>::all_with(w.client.clone(), &klutch_a9s::provider::api::usage())
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

    // The ProviderConfig counts its user, is protected by a finalizer and is healthy.
    let pcs: Api<klutch_a9s::provider::api::ProviderConfig> = Api::all(w.client.clone());
    w.wait::<ServiceInstance>(&name, "ProviderConfig users = 1 and healthy", |_| true)
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let p = pcs.get(&pc).await.unwrap();
        let st = p.status.clone().unwrap_or_default();
        if st.users == Some(1)
            && p.finalizers().iter().any(|f| f == meta::IN_USE_FINALIZER)
            && st.health.as_ref().and_then(|h| h.last_status) == Some(true)
        {
            assert_eq!(
                st.health.unwrap().last_message.as_deref(),
                Some("Available")
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ProviderConfig status: {st:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }

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
    use klutch_sdk::crossplane::Managed;
    use klutch_sdk::crossplane::conditions::is_true;
    is_true(o.conditions(), "Ready") && is_true(o.conditions(), "Synced")
}

async fn wait_synced_message(w: &World, name: &str, want: &str) -> ServiceInstance {
    w.wait::<ServiceInstance>(name, &format!("Synced=False {want:?}"), |o| {
        o.and_then(|o| {
            klutch_sdk::crossplane::conditions::get(
                klutch_sdk::crossplane::Managed::conditions(o),
                "Synced",
            )
            .cloned()
        })
        .is_some_and(|c| {
            c.status == "False" && c.message.as_deref().is_some_and(|m| m.contains(want))
        })
    })
    .await
    .expect("exists")
}

/// Waits for a Warning Event about `name` whose note contains `want` (Events outlive the
/// transient conditions they were written with).
async fn wait_event(w: &World, name: &str, want: &str) {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(w.client.clone());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let evs = events.list(&Default::default()).await.unwrap();
        if evs.items.iter().any(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.note.as_deref().is_some_and(|n| n.contains(want))
                && e.type_.as_deref() == Some("Warning")
        }) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Warning Event {want:?} for {name}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn restart_mid_provision_and_lost_answers_never_provision_twice() {
    let w = World::new("si-restart").await;
    let broker =
        klutch_a9s::testing::FakeA9sBroker::start(klutch_a9s::testing::FakeA9sBrokerConfig {
            osb: klutch_osb::testing::FakeBrokerConfig {
                mode: klutch_osb::testing::Mode::Async {
                    duration: std::time::Duration::from_secs(4),
                    retry_after: Some(1),
                },
                ..Default::default()
            },
            kind: DataServiceKind::Postgresql,
            page_size: 50,
        })
        .await
        .unwrap();
    let pc = w.broker_config(&broker).await;

    // A provider crash while the provision runs.
    let provider = w.start(w.options());
    let a = w.name("a");
    w.create(&instance(&w, &a, &pc, "small")).await;
    let si = w
        .wait::<ServiceInstance>(&a, "pending provision", |o| {
            o.and_then(|o| o.status.as_ref()?.pending_operation_type.clone())
                .as_deref()
                == Some("provision")
        })
        .await
        .unwrap();
    assert_eq!(condition(&si, "Ready").reason, "Creating");
    provider.kill().await;
    let provider = w.start(w.options());
    let si = w
        .wait_condition::<ServiceInstance>(&a, "Ready", "True", Some("Available"))
        .await;
    assert_eq!(
        broker.osb().count(Route::Provision),
        1,
        "no second PUT after the restart"
    );
    let id = instance_id(&si);

    // The answer to the PUT is lost (the broker is slower than the client's timeout): the
    // next reconcile finds the instance by its saved id and adopts it.
    let b = w.name("b");
    broker.osb().inject(
        Some(Route::Provision),
        klutch_osb::testing::FaultAction::Delay(std::time::Duration::from_secs(3)),
        Some(1),
    );
    w.create(&instance(&w, &b, &pc, "small")).await;
    wait_event(&w, &b, "did not answer within the timeout").await;
    let sib = w
        .wait_condition::<ServiceInstance>(&b, "Ready", "True", Some("Available"))
        .await;
    let idb = instance_id(&sib);
    let puts: Vec<_> = broker
        .osb()
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::Provision && r.path.ends_with(&idb))
        .collect();
    assert!(!puts.is_empty());
    let records = broker.client().unwrap().list_instances().await.unwrap();
    let mine: Vec<_> = records
        .iter()
        .filter(|r| {
            r.guid_at_tenant.as_deref() == Some(idb.as_str())
                || r.guid_at_tenant.as_deref() == Some(id.as_str())
        })
        .collect();
    assert_eq!(
        mine.len(),
        2,
        "exactly one broker instance per ServiceInstance: {records:?}"
    );
    assert_eq!(records.len(), 2, "no stray instances");

    w.delete::<ServiceInstance>(&a).await;
    w.delete::<ServiceInstance>(&b).await;
    w.wait_gone::<ServiceInstance>(&a).await;
    w.wait_gone::<ServiceInstance>(&b).await;
    assert_eq!(
        broker.instance_state(&id).as_deref(),
        Some("deleted"),
        "no orphan"
    );
    assert_eq!(
        broker.instance_state(&idb).as_deref(),
        Some("deleted"),
        "no orphan"
    );
    provider.stop().await;
}

#[tokio::test]
async fn broker_faults_become_conditions_and_heal() {
    let w = World::new("si-faults").await;
    let broker = async_broker(DataServiceKind::Postgresql).await;
    let pc = w.broker_config(&broker).await;
    let provider = w.start(w.options());
    let name = w.name("f");
    let respond = |status: u16, body: &str| klutch_osb::testing::FaultAction::Respond {
        status,
        body: body.into(),
    };

    // 5xx on provision: a truthful Synced=False, Ready stays Creating, then it heals.
    broker.osb().inject(
        Some(Route::Provision),
        respond(503, r#"{"description":"broker under maintenance"}"#),
        None,
    );
    w.create(&instance(&w, &name, &pc, "small")).await;
    let si = wait_synced_message(&w, &name, "answered HTTP 503: broker under maintenance").await;
    assert_eq!(condition(&si, "Ready").reason, "Creating");
    // 409 and 422 descriptions are shown verbatim.
    broker.osb().clear_faults();
    broker.osb().inject(Some(Route::Provision), respond(422, r#"{"error":"LimitExceeded","description":"Service instance limit hit for the service plan"}"#), None);
    let si =
        wait_synced_message(&w, &name, "Service instance limit hit for the service plan").await;
    assert_eq!(
        condition(&si, "Synced").message.as_deref(),
        Some("Service instance limit hit for the service plan")
    );
    broker.osb().clear_faults();
    broker.osb().inject(
        Some(Route::Provision),
        respond(
            409,
            r#"{"description":"instance exists with other attributes"}"#,
        ),
        None,
    );
    wait_synced_message(&w, &name, "instance exists with other attributes").await;
    broker.osb().clear_faults();
    w.wait_condition::<ServiceInstance>(&name, "Ready", "True", Some("Available"))
        .await;
    w.wait_condition::<ServiceInstance>(&name, "Synced", "True", None)
        .await;

    // Malformed JSON from the instance record endpoint.
    broker.inject(
        Some(klutch_a9s::testing::A9sRoute::InstanceRecord),
        klutch_a9s::testing::FaultAction::MalformedJson { status: 200 },
        None,
    );
    wait_synced_message(&w, &name, "sent a malformed answer (HTTP 200)").await;
    broker.clear_faults();
    w.wait_condition::<ServiceInstance>(&name, "Synced", "True", None)
        .await;

    // Events carry the same message.
    wait_event(&w, &name, "broker under maintenance").await;

    // 410 on deprovision counts as gone; the next Observe still sees the (fake's) live record
    // and deprovisions again, so nothing is orphaned.
    broker
        .osb()
        .inject(Some(Route::Deprovision), respond(410, "{}"), Some(1));
    let id = instance_id(
        &w.wait_condition::<ServiceInstance>(&name, "Ready", "True", None)
            .await,
    );
    w.delete::<ServiceInstance>(&name).await;
    w.wait_gone::<ServiceInstance>(&name).await;
    assert_eq!(broker.instance_state(&id).as_deref(), Some("deleted"));
    provider.stop().await;
}

#[tokio::test]
async fn orphan_deletion_and_observe_only_import() {
    let w = World::new("si-policy").await;
    let broker = async_broker(DataServiceKind::Postgresql).await;
    let pc = w.broker_config(&broker).await;
    let provider = w.start(w.options());

    // Orphan: the MR goes, the broker instance stays.
    let name = w.name("orphan");
    let mut si = instance(&w, &name, &pc, "small");
    si.spec.resource.deletion_policy = DeletionPolicy::Orphan;
    w.create(&si).await;
    let id = instance_id(
        &w.wait_condition::<ServiceInstance>(&name, "Ready", "True", Some("Available"))
            .await,
    );
    w.delete::<ServiceInstance>(&name).await;
    w.wait_gone::<ServiceInstance>(&name).await;
    assert_eq!(broker.osb().count(Route::Deprovision), 0);
    assert_eq!(broker.instance_state(&id).as_deref(), Some("provisioned"));

    // Observe-only without an external name: a clear error, nothing provisioned.
    let lost = w.name("lost");
    let mut si = instance(&w, &lost, &pc, "small");
    si.spec.resource.management_policies = vec![ManagementAction::Observe];
    w.create(&si).await;
    wait_synced_message(&w, &lost, "external-name required for observe-only").await;

    // Observe-only import of the orphaned instance by its external name.
    let import = w.name("import");
    let mut si = instance(&w, &import, &pc, "small");
    si.spec.resource.management_policies = vec![ManagementAction::Observe];
    si.metadata.annotations = Some(BTreeMap::from([(
        meta::EXTERNAL_NAME.to_owned(),
        id.clone(),
    )]));
    w.create(&si).await;
    let imported = w
        .wait_condition::<ServiceInstance>(&import, "Ready", "True", Some("Available"))
        .await;
    assert_eq!(instance_id(&imported), id);
    assert_eq!(condition(&imported, "Synced").reason, "ReconcileSuccess");

    // Paused: nothing happens, and the condition says so.
    let api: Api<ServiceInstance> = Api::all(w.client.clone());
    api.patch(
        &import,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {meta::PAUSED: "true"}}})),
    )
    .await
    .unwrap();
    w.wait_condition::<ServiceInstance>(&import, "Synced", "False", Some("ReconcilePaused"))
        .await;
    api.patch(
        &import,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {meta::PAUSED: null}}})),
    )
    .await
    .unwrap();
    w.wait_condition::<ServiceInstance>(&import, "Synced", "True", None)
        .await;

    w.delete::<ServiceInstance>(&import).await;
    w.delete::<ServiceInstance>(&lost).await;
    w.wait_gone::<ServiceInstance>(&import).await;
    w.wait_gone::<ServiceInstance>(&lost).await;
    assert_eq!(
        broker.osb().count(Route::Provision),
        1,
        "only the first instance was provisioned"
    );
    assert_eq!(
        broker.osb().count(Route::Deprovision),
        0,
        "observe-only never deletes"
    );
    assert_eq!(broker.instance_state(&id).as_deref(), Some("provisioned"));
    provider.stop().await;
}

#[tokio::test]
async fn broken_provider_configs_give_clear_conditions() {
    let w = World::new("si-pc").await;
    let broker = async_broker(DataServiceKind::Postgresql).await;
    let provider = w.start(w.options());

    // No such ProviderConfig.
    let name = w.name("nopc");
    w.create(&instance(&w, &name, "does-not-exist", "small"))
        .await;
    let si = wait_synced_message(
        &w,
        &name,
        "cannot get ProviderConfig \"does-not-exist\": not found",
    )
    .await;
    assert!(condition(&si, "Synced").reason == "ReconcileError");
    w.delete::<ServiceInstance>(&name).await;
    w.wait_gone::<ServiceInstance>(&name).await;

    // A ProviderConfig whose Secret is missing.
    let pc = w.name("missing");
    let creds = w.credentials("will-be-deleted", "admin", "secret").await;
    w.provider_config(
        &pc,
        &broker.url(),
        klutch_a9s::provider::api::ServiceType::Servicebroker,
        creds,
    )
    .await;
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(w.client.clone(), &w.ns)
        .delete("will-be-deleted", &Default::default())
        .await
        .unwrap();
    let name = w.name("missing-secret");
    w.create(&instance(&w, &name, &pc, "small")).await;
    wait_synced_message(
        &w,
        &name,
        &format!(
            "Extracting credentials: cannot get secret {}/will-be-deleted: not found",
            w.ns
        ),
    )
    .await;

    // The Secret appears with a wrong password: the broker's 401 is named as such.
    w.credentials("will-be-deleted", "admin", "wrong").await;
    let si = wait_synced_message(
        &w,
        &name,
        "rejected the credentials of the ProviderConfig (HTTP 401)",
    )
    .await;
    assert!(
        !condition(&si, "Synced").message.unwrap().contains("wrong"),
        "no secret in messages"
    );
    // Fixed credentials: the cached client is replaced and provisioning proceeds.
    w.credentials("will-be-deleted", "admin", "secret").await;
    w.wait_condition::<ServiceInstance>(&name, "Ready", "True", Some("Available"))
        .await;

    // A Backup Manager config used for an instance.
    let bm = backup_manager().await;
    let bm_pc = w.backup_config(&bm).await;
    let wrong = w.name("wrongtype");
    w.create(&instance(&w, &wrong, &bm_pc, "small")).await;
    wait_synced_message(&w, &wrong, "has serviceType backupmanager, but a ServiceInstance needs a ProviderConfig with serviceType servicebroker").await;

    // An unknown plan.
    let plan = w.name("plan");
    let ok_pc = w.broker_config(&broker).await;
    w.create(&instance(&w, &plan, &ok_pc, "gigantic")).await;
    wait_synced_message(&w, &plan, "no entry for the plan name \"gigantic\"").await;

    for n in [&name, &wrong, &plan] {
        w.delete::<ServiceInstance>(n).await;
    }
    for n in [&name, &wrong, &plan] {
        w.wait_gone::<ServiceInstance>(n).await;
    }
    provider.stop().await;
}

/// Kills the child process when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_elects_a_leader_serves_probes_and_metrics_and_reconciles() {
    let w = World::new("si-bin").await;
    let broker = async_broker(DataServiceKind::Postgresql).await;
    let pc = w.broker_config(&broker).await;
    let env = env().await;
    let health = klutch_sdk::testenv::free_port().unwrap();
    let metrics = klutch_sdk::testenv::free_port().unwrap();
    let _child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_provider-anynines"))
            .args([
                "--leader-election",
                "--namespace",
                &w.ns,
                "--poll",
                "3s",
                "--health-probe-bind-address",
                &format!("127.0.0.1:{health}"),
                "--metrics-bind-address",
                &format!("127.0.0.1:{metrics}"),
                "--watch-label-selector",
                &format!("{RUN_LABEL}={}", w.run),
            ])
            .env("KUBECONFIG", env["provider"].kubeconfig_path())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the binary"),
    );
    let name = w.name("bin");
    w.create(&instance(&w, &name, &pc, "small")).await;
    w.wait_condition::<ServiceInstance>(&name, "Ready", "True", Some("Available"))
        .await;

    let lease =
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(w.client.clone(), &w.ns)
            .get("crossplane-leader-election-provider-anynines")
            .await
            .expect("the Lease exists");
    assert!(lease.spec.unwrap().holder_identity.is_some());

    let http = reqwest::Client::new();
    let ok = http
        .get(format!("http://127.0.0.1:{health}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "ok");
    let backends: serde_json::Value = http
        .get(format!("http://127.0.0.1:{health}/backend-health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(backends[&pc], "ok");
    let text = http
        .get(format!("http://127.0.0.1:{metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for metric in [
        "provider_anynines_reconcile_duration_seconds_count{controller=\"serviceinstance\"}",
        "provider_anynines_external_requests_total{endpoint=\"servicebroker\",operation=\"provision\",outcome=\"ok\"}",
    ] {
        assert!(text.contains(metric), "{metric} missing:\n{text}");
    }

    w.delete::<ServiceInstance>(&name).await;
    w.wait_gone::<ServiceInstance>(&name).await;
}

#[tokio::test]
async fn generated_manifests_and_package_are_accepted_by_the_apiserver() {
    let w = World::new("manifests").await;
    let objs = klutch_a9s::provider::manifests(&klutch_a9s::provider::ManifestOptions {
        namespace: w.ns.clone(),
        replicas: 2,
        ..Default::default()
    });
    let kinds: Vec<&str> = objs.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment"
        ]
    );
    let deployment = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--leader-election"),
        "2 replicas need leader election"
    );
    let discovery = kube::discovery::Discovery::new(w.client.clone())
        .run()
        .await
        .unwrap();
    for obj in objs {
        let obj: kube::api::DynamicObject = serde_json::from_value(obj).unwrap();
        let gvk = kube::api::GroupVersionKind::try_from(obj.types.as_ref().unwrap()).unwrap();
        let (ar, caps) = discovery.resolve_gvk(&gvk).expect("a known kind");
        let api: Api<kube::api::DynamicObject> = if caps.scope == kube::discovery::Scope::Namespaced
        {
            Api::namespaced_with(w.client.clone(), &w.ns, &ar)
        } else {
            Api::all_with(w.client.clone(), &ar)
        };
        api.patch(
            &obj.name_any(),
            &PatchParams::apply("test").dry_run(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("{} rejected: {e}", gvk.kind));
    }
    // Every example manifest of Klutch v1.5 validates against our CRDs.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/klutch-v1.5/provider-anynines/examples/sample/postgresql");
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let obj: kube::api::DynamicObject = serde_saphyr::from_str(&text).unwrap();
        let gvk = kube::api::GroupVersionKind::try_from(obj.types.as_ref().unwrap()).unwrap();
        let (ar, _) = discovery.resolve_gvk(&gvk).expect("a provider kind");
        Api::<kube::api::DynamicObject>::all_with(w.client.clone(), &ar)
            .patch(
                &obj.name_any(),
                &PatchParams::apply("test").dry_run(),
                &Patch::Apply(&obj),
            )
            .await
            .unwrap_or_else(|e| panic!("{} rejected: {e}", gvk.kind));
    }
}

#[tokio::test]
async fn failed_provisions_stay_visible_or_are_mitigated() {
    let w = World::new("si-om").await;
    let broker =
        klutch_a9s::testing::FakeA9sBroker::start(klutch_a9s::testing::FakeA9sBrokerConfig {
            osb: klutch_osb::testing::FakeBrokerConfig {
                mode: klutch_osb::testing::Mode::Async {
                    duration: std::time::Duration::from_secs(2),
                    retry_after: Some(1),
                },
                fail_async_operations: true,
                ..Default::default()
            },
            kind: DataServiceKind::Postgresql,
            page_size: 50,
        })
        .await
        .unwrap();
    let pc = w.broker_config(&broker).await;

    // --orphan-mitigation=off: the failed instance stays, Unavailable, Synced=False.
    let provider = w.start(w.options());
    let kept = w.name("kept");
    w.create(&instance(&w, &kept, &pc, "small")).await;
    let si = w
        .wait_condition::<ServiceInstance>(&kept, "Ready", "False", Some("Unavailable"))
        .await;
    let kept_id = instance_id(&si);
    assert_eq!(broker.instance_state(&kept_id).as_deref(), Some("failed"));
    provider.stop().await;

    // --orphan-mitigation=auto: deprovisioned, then provisioned again under a new id.
    let provider = w.start(klutch_a9s::provider::Options {
        orphan_mitigation: true,
        ..w.options()
    });
    let om = w.name("om");
    w.create(&instance(&w, &om, &pc, "small")).await;
    let si = w
        .wait::<ServiceInstance>(&om, "orphan mitigation running", |o| {
            o.and_then(|o| o.status.as_ref()?.pending_operation_type.clone())
                .as_deref()
                == Some("orphan-mitigation")
        })
        .await
        .unwrap();
    let failed_id = instance_id(&si);
    broker.osb().set_fail_async_operations(false);
    let si = w
        .wait_condition::<ServiceInstance>(&om, "Ready", "True", Some("Available"))
        .await;
    let new_id = instance_id(&si);
    assert_ne!(new_id, failed_id, "a new id after orphan mitigation");
    assert_eq!(si.annotations()[meta::EXTERNAL_NAME], new_id);
    assert_eq!(
        broker.instance_state(&failed_id).as_deref(),
        Some("deleted"),
        "the failed instance is not orphaned"
    );

    for n in [&kept, &om] {
        w.delete::<ServiceInstance>(n).await;
    }
    for n in [&kept, &om] {
        w.wait_gone::<ServiceInstance>(n).await;
    }
    assert_eq!(broker.instance_state(&kept_id).as_deref(), Some("deleted"));
    assert_eq!(broker.instance_state(&new_id).as_deref(), Some("deleted"));
    provider.stop().await;
}

#[tokio::test]
async fn klutch_v1_5_instances_are_adopted_without_broker_mutations() {
    let w = World::new("si-upgrade").await;
    let broker = async_broker(DataServiceKind::Postgresql).await;
    let pc = w.broker_config(&broker).await;
    // An instance the Go provider provisioned.
    let id = "76c63662-5b66-4d8f-b079-423ce962bc43-1706599907";
    let client = broker.client().unwrap();
    let req = klutch_osb::ProvisionRequest::new("fake-db-id", "small-id")
        .guids("org-1", "space-1")
        .parameter("max_connections", 100);
    client
        .osb()
        .provision(id, &req, &klutch_osb::CallOptions::new().asynchronous())
        .await
        .unwrap();
    for _ in 0..200 {
        if broker.client().unwrap().instance(id).await.unwrap().state
            == klutch_a9s::broker::InstanceState::Provisioned
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let requests_before = broker.osb().requests().len();

    // Its MR as v1.5 left it: external-name = metadata.name, the id only in the status. It is
    // created paused so that the status can be written first, as the Go provider had.
    let name = w.name("legacy");
    let mut si = instance(&w, &name, &pc, "small");
    si.metadata.annotations = Some(BTreeMap::from([
        (meta::EXTERNAL_NAME.to_owned(), name.clone()),
        (meta::PAUSED.to_owned(), "true".to_owned()),
    ]));
    w.create(&si).await;
    let api: Api<ServiceInstance> = Api::all(w.client.clone());
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"atProvider": {"instanceId": id, "serviceId": "fake-db-id", "planId": "small-id"}}})),
    )
    .await
    .unwrap();
    let provider = w.start(w.options());
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {meta::PAUSED: null}}})),
    )
    .await
    .unwrap();
    let si = w
        .wait_condition::<ServiceInstance>(&name, "Ready", "True", Some("Available"))
        .await;
    w.wait_condition::<ServiceInstance>(&name, "Synced", "True", None)
        .await;
    assert_eq!(
        si.annotations()[meta::EXTERNAL_NAME],
        id,
        "the id moved into the external name"
    );
    let mutations: Vec<_> = broker.osb().requests()[requests_before..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        mutations.is_empty(),
        "no broker mutation while adopting: {mutations:?}"
    );
    w.delete::<ServiceInstance>(&name).await;
    w.wait_gone::<ServiceInstance>(&name).await;
    assert_eq!(broker.instance_state(id).as_deref(), Some("deleted"));
    provider.stop().await;
}

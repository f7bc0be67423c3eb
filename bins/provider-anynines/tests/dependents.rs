//! ServiceBinding (connection Secret), Backup and Restore against a real kube-apiserver, the
//! fake a9s broker and the fake Backup Manager; instance deletion waits for its dependents.

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use klutch_a9s::credentials::DataServiceKind;
use klutch_a9s::provider::api::{
    Backup, BackupParameters, BackupSpec, Reference, ResourceSpec, Restore, RestoreParameters,
    RestoreSpec, SecretReference, ServiceBinding, ServiceBindingParameters, ServiceBindingSpec,
    ServiceInstance, ServiceInstanceParameters, ServiceInstanceSpec,
};
use klutch_a9s::provider::meta;
use klutch_a9s::testing::BackupRoute;
use klutch_osb::testing::Route;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams};

fn spec(pc: &str) -> ResourceSpec {
    ResourceSpec {
        provider_config_ref: Reference::named(pc),
        ..ResourceSpec::default()
    }
}

#[tokio::test]
async fn binding_backup_restore_lifecycle() {
    let w = World::new("deps").await;
    let broker = async_broker(DataServiceKind::Postgresql).await;
    let bm = backup_manager().await;
    let broker_pc = w.broker_config(&broker).await;
    let bm_pc = w.backup_config(&bm).await;
    let provider = w.start(w.options());

    let claim = w.name("pg");
    let mut si = ServiceInstance::new(
        &format!("{claim}-x1"),
        ServiceInstanceSpec {
            for_provider: ServiceInstanceParameters {
                service_name: "fake-db".into(),
                plan_name: "small".into(),
                accepts_incomplete: true,
                organization_guid: "org".into(),
                space_guid: "space".into(),
                ..Default::default()
            },
            resource: spec(&broker_pc),
        },
    );
    si.metadata.labels = Some(w.labels(&claim));
    w.create(&si).await;

    // The binding waits for the instance, then writes the Secret.
    let sb_name = w.name("sb-x2");
    let mut sb = ServiceBinding::new(
        &sb_name,
        ServiceBindingSpec {
            for_provider: ServiceBindingParameters {
                instance_name: claim.clone(),
                accepts_incomplete: true,
                ..Default::default()
            },
            resource: ResourceSpec {
                write_connection_secret_to_ref: Some(SecretReference {
                    name: "sb-creds".into(),
                    namespace: w.ns.clone(),
                }),
                ..spec(&broker_pc)
            },
        },
    );
    let mut labels = w.labels("sb");
    labels.insert(meta::INSTANCE_TYPE_LABEL.into(), "postgresql".into());
    sb.metadata.labels = Some(labels);
    w.create(&sb).await;
    let sb = w
        .wait_condition::<ServiceBinding>(&sb_name, "Ready", "True", Some("Available"))
        .await;
    let si = w
        .wait_condition::<ServiceInstance>(&si.name_any(), "Ready", "True", None)
        .await;
    let iid = si.annotations()[meta::EXTERNAL_NAME].clone();
    let at = sb.status.as_ref().unwrap().at_provider.clone().unwrap();
    assert_eq!(at.state, "Created");
    assert_eq!(at.instance_id.as_deref(), Some(iid.as_str()));
    assert_eq!(at.service_id.as_deref(), Some("fake-db-id"));
    let endpoints = at.connection_details.unwrap();
    assert_eq!(endpoints[0].label.as_deref(), Some("SQL"));
    assert_eq!(endpoints[0].port.as_deref(), Some("5432"));
    assert_eq!(
        sb.annotations()[meta::EXTERNAL_NAME],
        sb.uid().unwrap(),
        "binding id = UID"
    );
    assert_eq!(sb.annotations()[meta::BINDING_CREATED], "true");
    assert!(broker.osb().has_binding(&iid, &sb.uid().unwrap()));

    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    let secret = secrets.get("sb-creds").await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some(meta::CONNECTION_SECRET_TYPE));
    assert_eq!(
        secret.metadata.owner_references.as_ref().unwrap()[0].uid,
        sb.uid().unwrap()
    );
    let data: BTreeMap<String, String> = secret
        .data
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "host", "hosts", "name", "password", "port", "uri", "username"
        ]
    );
    assert_eq!(data["port"], "5432");
    assert_eq!(data["password"], "fake-password");

    // A deleted Secret is restored by the next Observe.
    secrets
        .delete("sb-creds", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while secrets.get_opt("sb-creds").await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Secret not restored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }

    // A spec change of a created binding is not sent anywhere; users are told.
    Api::<ServiceBinding>::all(w.client.clone())
        .patch(
            &sb_name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                serde_json::json!({"spec": {"forProvider": {"parameters": {"x": "y"}}}}),
            ),
        )
        .await
        .unwrap();
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(w.client.clone());
    let deadline = tokio::time::Instant::now() + WAIT;
    while !events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .any(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(sb_name.as_str())
                && e.note.as_deref()
                    == Some("ServiceBinding parameters cannot be changed; recreate the binding")
        })
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Warning Event about the immutable binding"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(
        broker.osb().count(Route::Bind),
        1,
        "bindings are never re-sent for a spec change"
    );

    // Backup.
    let backup_name = w.name("backup-x3");
    let mut backup = Backup::new(
        &backup_name,
        BackupSpec {
            for_provider: BackupParameters {
                instance_name: claim.clone(),
                exclude_from_auto_backup: Some(true),
                ..Default::default()
            },
            resource: spec(&bm_pc),
        },
    );
    backup.metadata.labels = Some(w.labels("backup"));
    w.create(&backup).await;
    let backup = w
        .wait_condition::<Backup>(&backup_name, "Ready", "True", Some("Available"))
        .await;
    let bat = backup.status.as_ref().unwrap().at_provider.clone().unwrap();
    assert_eq!(bat.status.as_deref(), Some("done"));
    assert_eq!(bat.instance_id.as_deref(), Some(iid.as_str()));
    let bid = bat.id.unwrap();
    assert_eq!(backup.annotations()[meta::EXTERNAL_NAME], bid.to_string());
    assert_eq!(backup.annotations()[meta::BACKUP_ID], bid.to_string());
    assert_eq!(bm.count(BackupRoute::CreateBackup), 1);
    assert_eq!(bm.count(BackupRoute::UpdateConfig), 1);

    // Restore.
    let restore_name = w.name("restore-x4");
    let mut restore = Restore::new(
        &restore_name,
        RestoreSpec {
            for_provider: RestoreParameters {
                backup_name: "backup".into(),
            },
            resource: spec(&bm_pc),
        },
    );
    restore.metadata.labels = Some(w.labels("restore"));
    w.create(&restore).await;
    let restore = w
        .wait_condition::<Restore>(&restore_name, "Ready", "True", Some("Available"))
        .await;
    assert_eq!(
        condition(&restore, "Ready").message.as_deref(),
        Some("Restore completed successfully")
    );
    let rat = restore
        .status
        .as_ref()
        .unwrap()
        .at_provider
        .clone()
        .unwrap();
    assert_eq!(rat.backup_id, Some(bid));
    assert_eq!(bm.count(BackupRoute::CreateRestore), 1);

    // The instance waits for its dependents.
    w.delete::<ServiceInstance>(&si.name_any()).await;
    let blocked = w
        .wait_condition::<ServiceInstance>(
            &si.name_any(),
            "Synced",
            "False",
            Some("ReconcileError"),
        )
        .await;
    assert_eq!(
        condition(&blocked, "Synced").message.as_deref(),
        Some("waiting for 2 dependent resources to be deleted")
    );
    assert_eq!(broker.osb().count(Route::Deprovision), 0);

    w.delete::<Restore>(&restore_name).await;
    w.wait_gone::<Restore>(&restore_name).await;
    w.delete::<Backup>(&backup_name).await;
    w.wait_gone::<Backup>(&backup_name).await;
    assert_eq!(bm.count(BackupRoute::DeleteBackup), 1);
    w.delete::<ServiceBinding>(&sb_name).await;
    w.wait_gone::<ServiceBinding>(&sb_name).await;
    assert!(!broker.osb().has_binding(&iid, &sb.uid().unwrap()));
    assert!(
        secrets.get_opt("sb-creds").await.unwrap().is_none(),
        "Secret removed"
    );
    w.wait_gone::<ServiceInstance>(&si.name_any()).await;
    assert_eq!(broker.instance_state(&iid).as_deref(), Some("deleted"));
    provider.stop().await;
}

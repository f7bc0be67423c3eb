//! One provider connection (§5.4): everything the konnector does for the bindings that share one
//! kubeconfig. It lists the provider side first (`InformersSynced`), then runs the heartbeat and
//! kubeconfig rotation, deletes the APIServiceNamespaces of consumer namespaces that are gone,
//! materialises each binding's CRD (`Connected`, `SchemaInSync`) and runs one sync context per
//! binding, restarted when the export's generation or the binding's accepted claims change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::connection::{Provider, ProviderConfig, Shared};
use super::{context, heartbeat, kubeconfig, status, unbind};
use crate::api::conditions::{self, Condition};
use crate::api::wellknown::CLUSTER_BINDING_NAME;
use crate::api::{
    APIServiceBinding, APIServiceBindingStatus, APIServiceExport, APIServiceExportStatus,
    APIServiceNamespace, ClusterBinding, Severity,
};

/// How often bindings are re-checked without an event (CRD establishment, namespace removal).
const TICK: Duration = Duration::from_secs(10);
/// Retry after a failed informer sync.
const SYNC_RETRY: Duration = Duration::from_secs(300);

struct RunningContext {
    key: String,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Runs the connection until `cancel` fires.
pub async fn run(
    shared: Arc<Shared>,
    config: ProviderConfig,
    members: watch::Receiver<BTreeSet<String>>,
    cancel: CancellationToken,
) {
    let client = loop {
        match kubeconfig::client(
            &config.kubeconfig,
            (&config.secret.0, &config.secret.1),
            &shared.metrics,
        )
        .await
        {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the provider client; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
            }
        }
    };
    let provider = Arc::new(Provider {
        shared: shared.clone(),
        client,
        namespace: config.namespace.clone(),
        members,
    });

    // "Informers": the provider lists must work before anything else starts.
    loop {
        let synced = tokio::time::timeout(
            shared.settings.informer_sync_timeout,
            initial_lists(&provider),
        )
        .await;
        match synced {
            Ok(Ok(())) => break,
            Ok(Err(e)) => {
                tracing::warn!(provider_namespace = %provider.namespace, error = %e, "provider lists failed");
                provider
                    .set_on_members(status::bad(
                        "InformersSynced",
                        Severity::Error,
                        "InformerSyncTimeout",
                        format!(
                            "Listing the provider namespace {} failed: {e}",
                            provider.namespace
                        ),
                    ))
                    .await;
            }
            Err(_) => {
                provider
                    .set_on_members(status::bad(
                        "InformersSynced",
                        Severity::Error,
                        "InformerSyncTimeout",
                        format!(
                            "The provider namespace {} could not be listed within {:?}",
                            provider.namespace, shared.settings.informer_sync_timeout
                        ),
                    ))
                    .await;
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(SYNC_RETRY.min(shared.settings.informer_sync_timeout * 2)) => {}
        }
    }
    provider.set_on_members(status::ok("InformersSynced")).await;

    let heartbeat = tokio::spawn(heartbeat::run(provider.clone(), cancel.child_token()));
    bindings_loop(provider.clone(), cancel.clone()).await;
    let _ = heartbeat.await;
}

async fn initial_lists(p: &Provider) -> Result<(), kube::Error> {
    let lp = ListParams::default().limit(1);
    Api::<ClusterBinding>::namespaced(p.client.clone(), &p.namespace)
        .list(&lp)
        .await?;
    Api::<APIServiceExport>::namespaced(p.client.clone(), &p.namespace)
        .list(&lp)
        .await?;
    Api::<APIServiceNamespace>::namespaced(p.client.clone(), &p.namespace)
        .list(&lp)
        .await?;
    Ok(())
}

async fn bindings_loop(p: Arc<Provider>, cancel: CancellationToken) {
    let wake = Arc::new(Notify::new());
    let exports: Api<APIServiceExport> = Api::namespaced(p.client.clone(), &p.namespace);
    let export_feed = {
        let wake = wake.clone();
        watcher(exports, watcher::Config::default())
            .default_backoff()
            .touched_objects()
            .for_each(move |_| {
                wake.notify_one();
                futures::future::ready(())
            })
    };
    let binding_feed = {
        let wake = wake.clone();
        watcher(
            Api::<APIServiceBinding>::all(p.shared.consumer.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .touched_objects()
        .for_each(move |_| {
            wake.notify_one();
            futures::future::ready(())
        })
    };
    let feeds = tokio::spawn(async move {
        tokio::join!(export_feed, binding_feed);
    });
    let mut members = p.members.clone();
    let mut contexts: BTreeMap<String, RunningContext> = BTreeMap::new();
    loop {
        let current = members.borrow_and_update().clone();
        for key in &current {
            let (ns, name) = key.split_once('/').unwrap_or(("", key));
            reconcile_binding(&p, ns, name, &mut contexts).await;
        }
        // Detached bindings (deleted, or moved to another kubeconfig): stop their contexts only.
        let gone: Vec<String> = contexts
            .keys()
            .filter(|k| !current.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(c) = contexts.remove(&key) {
                stop(c).await;
            }
        }
        remove_stale_namespaces(&p).await;
        tokio::select! {
            () = cancel.cancelled() => break,
            r = members.changed() => if r.is_err() { break },
            () = wake.notified() => tokio::time::sleep(Duration::from_millis(100)).await,
            () = tokio::time::sleep(TICK) => {}
        }
    }
    feeds.abort();
    for (_, c) in std::mem::take(&mut contexts) {
        stop(c).await;
    }
}

async fn stop(c: RunningContext) {
    c.cancel.cancel();
    let _ = c.task.await;
}

fn binding_condition(c: Condition) -> impl Fn(&mut APIServiceBindingStatus) {
    move |s| conditions::set(&mut s.conditions, c.clone())
}

async fn reconcile_binding(
    p: &Arc<Provider>,
    ns: &str,
    name: &str,
    contexts: &mut BTreeMap<String, RunningContext>,
) {
    let key = format!("{ns}/{name}");
    let api = p.bindings(ns);
    let Ok(Some(binding)) = api.get_opt(name).await else {
        return;
    };
    // No finalizer of ours stays on a binding (earlier versions put one there).
    unbind::release_binding(&api, &binding).await;
    if binding.metadata.deletion_timestamp.is_some() {
        // Going: stop syncing; the CRD is released once the binding is gone (see `unbind`).
        if let Some(c) = contexts.remove(&key) {
            stop(c).await;
        }
        return;
    }
    let exports: Api<APIServiceExport> = Api::namespaced(p.client.clone(), &p.namespace);
    let export = exports.get_opt(name).await.ok().flatten();

    let report = |c: Condition| status::update_binding(&api, name, binding_condition(c));
    let Some(export) = export else {
        let _ = report(status::bad(
            "Connected",
            Severity::Error,
            "APIServiceExportNotFound",
            format!(
                "APIServiceExport {name} not found on the provider. Rerun kubectl bind for repair."
            ),
        ))
        .await;
        if let Some(c) = contexts.remove(&key) {
            stop(c).await;
        }
        return;
    };
    let outcome = materialise_crd(p, &binding, &export).await;
    let (connected, crd) = match outcome {
        Ok(crd) => (
            status::ok("Connected"),
            Some(wait_established(p, crd).await),
        ),
        Err(c) => (c, None),
    };
    let connected = match (&crd, context::check_claims(&binding, &export)) {
        (Some(_), Err(c)) => c,
        _ => connected,
    };
    let established = crd.as_ref().is_some_and(is_established);
    let schema = if established {
        status::ok("SchemaInSync")
    } else {
        status::bad(
            "SchemaInSync",
            Severity::Info,
            "CustomResourceDefinitionNotEstablished",
            "Waiting for the CustomResourceDefinition to be established",
        )
    };
    let pretty = Api::<ClusterBinding>::namespaced(p.client.clone(), &p.namespace)
        .get_opt(CLUSTER_BINDING_NAME)
        .await
        .ok()
        .flatten()
        .map(|cb| cb.spec.provider_pretty_name);
    let ready_to_sync =
        status::is_true(std::slice::from_ref(&connected), "Connected") && established;
    let _ = status::update_binding(&api, name, |s: &mut APIServiceBindingStatus| {
        conditions::set(&mut s.conditions, connected.clone());
        conditions::set(&mut s.conditions, schema.clone());
        // This pass runs only after the provider lists succeeded.
        conditions::set(&mut s.conditions, status::ok("InformersSynced"));
        if pretty.is_some() {
            s.provider_pretty_name = pretty.clone();
        }
    })
    .await
    .inspect_err(|e| tracing::warn!(error = %e, "binding status"));
    mirror_onto_export(p, &export, &connected, &schema, crd.as_ref()).await;

    if !ready_to_sync {
        if let Some(c) = contexts.remove(&key) {
            stop(c).await;
        }
        return;
    }
    let crd = crd.expect("established implies a CRD");
    let ctx_key = context::key(&binding, &export, &crd);
    if contexts
        .get(&key)
        .is_some_and(|c| c.key == ctx_key && !c.task.is_finished())
    {
        return;
    }
    if let Some(c) = contexts.remove(&key) {
        stop(c).await;
    }
    let cancel = CancellationToken::new();
    let task = tokio::spawn(context::run(
        p.clone(),
        binding,
        export,
        crd,
        cancel.clone(),
    ));
    contexts.insert(
        key,
        RunningContext {
            key: ctx_key,
            cancel,
            task,
        },
    );
}

/// A CRD just created or updated becomes Established within moments: wait for it (at most
/// 10 s) rather than until the next pass, so syncing starts at once.
async fn wait_established(p: &Provider, crd: CustomResourceDefinition) -> CustomResourceDefinition {
    if is_established(&crd) {
        return crd;
    }
    let api: Api<CustomResourceDefinition> = Api::all(p.shared.consumer.clone());
    let name = crd.name_any();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut latest = crd;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(Some(c)) = api.get_opt(&name).await {
            latest = c;
            if is_established(&latest) {
                break;
            }
        }
    }
    latest
}

fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

/// Creates or updates the consumer CRD for `binding` (§5.5); never touches a foreign CRD. A CRD
/// left by an earlier binding of the same name (kept by unbinding) is taken over: its owner
/// reference moves to `binding`, and syncing its objects resumes.
async fn materialise_crd(
    p: &Provider,
    binding: &APIServiceBinding,
    export: &APIServiceExport,
) -> Result<CustomResourceDefinition, Condition> {
    let name = binding.name_any();
    let mut desired = crate::api::convert::crd_from_export(export, binding).map_err(|e| {
        status::bad(
            "Connected",
            Severity::Error,
            "APIServiceExportInvalid",
            format!("APIServiceExport {name} is invalid: {e}"),
        )
    })?;
    let secret_ref = &binding.spec.kubeconfig_secret_ref;
    let secret = format!("{}/{}", secret_ref.namespace, secret_ref.name);
    desired.annotations_mut().insert(
        unbind::KUBECONFIG_SECRET_ANNOTATION.to_owned(),
        secret.clone(),
    );
    let crds: Api<CustomResourceDefinition> = Api::all(p.shared.consumer.clone());
    let existing = crds.get_opt(&name).await.map_err(|e| {
        status::bad(
            "Connected",
            Severity::Error,
            "CustomResourceDefinitionUpdateFailed",
            format!("Reading CustomResourceDefinition {name} failed: {e}"),
        )
    })?;
    let current = match existing {
        None => {
            return crds
                .create(&PostParams::default(), &desired)
                .await
                .map_err(|e| {
                    status::bad(
                        "Connected",
                        Severity::Error,
                        "CustomResourceDefinitionCreateFailed",
                        format!("Creating CustomResourceDefinition {name} failed: {e}"),
                    )
                });
        }
        Some(current) => current,
    };
    let owned = crate::api::convert::is_owned_by(&current, binding);
    if !owned && !left_by_former_binding(p, &current, binding).await {
        return Err(status::bad(
            "Connected",
            Severity::Error,
            "ForeignCustomResourceDefinition",
            format!(
                "CustomResourceDefinition {name} exists and is not owned by this APIServiceBinding; it is left alone"
            ),
        ));
    }
    let want = serde_json::to_value(&desired.spec).unwrap_or_default();
    let have = serde_json::to_value(&current.spec).unwrap_or_default();
    let spec_current = is_subset(&want, &have);
    let annotated = current
        .annotations()
        .get(unbind::KUBECONFIG_SECRET_ANNOTATION)
        == Some(&secret);
    if owned && spec_current && annotated {
        return Ok(current);
    }
    let mut update = current.clone();
    if !spec_current {
        update.spec = desired.spec.clone();
    }
    update
        .annotations_mut()
        .insert(unbind::KUBECONFIG_SECRET_ANNOTATION.to_owned(), secret);
    if !owned {
        tracing::info!(crd = %name, "taking over the CRD a former binding of this name left");
        let mut owners: Vec<_> = current
            .owner_references()
            .iter()
            .filter(|r| unbind::binding_owner(&current).is_none_or(|o| o.uid != r.uid))
            .cloned()
            .collect();
        owners.extend(
            desired
                .metadata
                .owner_references
                .clone()
                .unwrap_or_default(),
        );
        update.metadata.owner_references = Some(owners);
    }
    crds.replace(&name, &PostParams::default(), &update)
        .await
        .map_err(|e| {
            status::bad(
                "Connected",
                Severity::Error,
                "CustomResourceDefinitionUpdateFailed",
                format!("Updating CustomResourceDefinition {name} failed: {e}"),
            )
        })
}

/// Whether `crd` was materialised for an earlier APIServiceBinding named like `binding` that no
/// longer exists (unbinding keeps the CRD).
async fn left_by_former_binding(
    p: &Provider,
    crd: &CustomResourceDefinition,
    binding: &APIServiceBinding,
) -> bool {
    let Some(owner) = unbind::binding_owner(crd) else {
        return false;
    };
    if Some(owner.name.as_str()) != binding.metadata.name.as_deref() {
        return false;
    }
    let Ok(all) = Api::<APIServiceBinding>::all(p.shared.consumer.clone())
        .list(&ListParams::default())
        .await
    else {
        return false;
    };
    !all.iter()
        .any(|b| b.metadata.uid.as_deref() == Some(owner.uid.as_str()))
}

/// Whether every field of `want` is in `have` with the same value (the server adds defaults).
fn is_subset(want: &serde_json::Value, have: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w.iter().all(|(k, v)| {
            h.get(k).map_or(
                v.is_null() || v == &Value::Object(Default::default()),
                |hv| is_subset(v, hv),
            )
        }),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| is_subset(a, b))
        }
        _ => want == have,
    }
}

/// Mirrors `Connected`, `ConsumerInSync`, the consumer CRD's conditions, accepted names and
/// stored versions onto the export's status (§5.5).
async fn mirror_onto_export(
    p: &Provider,
    export: &APIServiceExport,
    connected: &Condition,
    schema: &Condition,
    crd: Option<&CustomResourceDefinition>,
) {
    let api: Api<APIServiceExport> = Api::namespaced(p.client.clone(), &p.namespace);
    let consumer_in_sync = Condition {
        type_: "ConsumerInSync".into(),
        ..schema.clone()
    };
    let crd_conditions: Vec<Condition> = crd
        .and_then(|c| c.status.as_ref())
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let t = c.last_transition_time.unwrap_or_else(status::now);
            match c.status.as_str() {
                "True" => Condition::true_(&c.type_, t),
                _ => Condition::false_(
                    &c.type_,
                    Severity::Error,
                    c.reason.as_deref().unwrap_or("Unknown"),
                    c.message.unwrap_or_default(),
                    t,
                ),
            }
        })
        .collect();
    let accepted = crd
        .and_then(|c| c.status.as_ref())
        .and_then(|s| s.accepted_names.clone());
    let stored = crd
        .and_then(|c| c.status.as_ref())
        .and_then(|s| s.stored_versions.clone());
    let _ = status::update(
        &api,
        "APIServiceExport",
        &export.name_any(),
        |s: &mut APIServiceExportStatus| {
            conditions::set(&mut s.conditions, connected.clone());
            conditions::set(&mut s.conditions, consumer_in_sync.clone());
            for c in &crd_conditions {
                conditions::set(&mut s.conditions, c.clone());
            }
            if let Some(names) = &accepted {
                s.accepted_names = serde_json::to_value(names)
                    .ok()
                    .and_then(|v| serde_json::from_value(v).ok());
            }
            if let Some(v) = &stored {
                s.stored_versions = v.clone();
            }
        },
    )
    .await
    .inspect_err(|e| tracing::debug!(error = %e, "export status"));
}

/// Deletes the APIServiceNamespaces of consumer namespaces that no longer exist (§5.4).
async fn remove_stale_namespaces(p: &Provider) {
    let api: Api<APIServiceNamespace> = Api::namespaced(p.client.clone(), &p.namespace);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return;
    };
    let namespaces: Api<Namespace> = Api::all(p.shared.consumer.clone());
    for mapping in list {
        let name = mapping.name_any();
        if mapping.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Ok(None) = namespaces.get_opt(&name).await {
            tracing::info!(namespace = %name, "consumer namespace gone; deleting its APIServiceNamespace");
            let _ = api.delete(&name, &DeleteParams::default()).await;
        }
    }
}

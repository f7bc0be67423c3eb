//! APIServiceNamespace → service namespace (spec §4.5.4).
//!
//! Target = `status.namespace`, else the backend's
//! [`service_namespace`](super::super::BindingBackend::service_namespace) name. It is created with
//! annotation `klutch.anynines.com/api-service-namespace: <clusterNs>/<name>`; in `Namespaced`
//! consumer scope it gets RoleBinding `klutch-binder` → `klutch-binder-<clusterNs>`;
//! `status.namespace` is set once and never changed. When the APIServiceNamespace is deleted, the
//! namespace is deleted **only if** its annotation points back to it (spec §7 item 21).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};

use super::lenient::{Lenient, valid_or_report};
use super::{Context, Error, Result, error_policy, kube_err};
use crate::api::APIServiceNamespace;
use crate::api::wellknown::{API_SERVICE_NAMESPACE_ANNOTATION, BINDER_NAME};
use crate::backend::binding_space::FIELD_MANAGER;
use crate::backend::contract::BindingBackend;
use crate::backend::rbac;

pub(crate) async fn run<B: BindingBackend>(ctx: Arc<Context<B>>) {
    let client = ctx.client.clone();
    let controller = Controller::new(
        Api::<Lenient<APIServiceNamespace>>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    let by_namespace = store.clone();
    let reconciler = controller
        .watches(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
            move |ns| {
                // A service namespace points back to its APIServiceNamespace.
                ns.annotations()
                    .get(API_SERVICE_NAMESPACE_ANNOTATION)
                    .and_then(|back| back.split_once('/'))
                    .map(|(cluster_ns, name)| ObjectRef::new(name).within(cluster_ns))
            },
        )
        .watches(
            Api::<Lenient<crate::api::ClusterBinding>>::all(client.clone()),
            watcher::Config::default(),
            move |cb| {
                let ns = cb.namespace().unwrap_or_default();
                by_namespace
                    .state()
                    .into_iter()
                    .filter(|a| a.namespace().as_deref() == Some(ns.as_str()))
                    .map(|a| ObjectRef::from_obj(&*a))
                    .collect::<Vec<_>>()
            },
        )
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    tokio::join!(reconciler, collect_deleted(client));
}

fn back_reference(cluster_ns: &str, name: &str) -> String {
    format!("{cluster_ns}/{name}")
}

async fn reconcile<B: BindingBackend>(
    asn: Arc<Lenient<APIServiceNamespace>>,
    ctx: Arc<Context<B>>,
) -> Result<Action> {
    let Some(asn) = valid_or_report(&asn, &ctx.recorder).await else {
        return Ok(Action::await_change());
    };
    let cluster_ns = asn.namespace().unwrap_or_default();
    let name = asn.name_any();
    if asn.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let assigned = asn.status.as_ref().and_then(|s| s.namespace.clone());
    let target = assigned
        .clone()
        .unwrap_or_else(|| ctx.backend.service_namespace(&cluster_ns, &name));
    let back = back_reference(&cluster_ns, &name);
    let namespaces = Api::<Namespace>::all(ctx.client.clone());
    match namespaces
        .get_opt(&target)
        .await
        .map_err(kube_err("get service namespace"))?
    {
        Some(existing) => {
            let annotation = existing
                .annotations()
                .get(API_SERVICE_NAMESPACE_ANNOTATION)
                .cloned();
            if annotation.as_deref() != Some(back.as_str()) {
                return Err(Error::Foreign {
                    namespace: target,
                    annotation,
                });
            }
            if existing.metadata.deletion_timestamp.is_some() {
                // Being deleted (e.g. the APIServiceNamespace was re-created): wait for it.
                return Ok(Action::requeue(std::time::Duration::from_secs(2)));
            }
        }
        None => {
            let ns = Namespace {
                metadata: ObjectMeta {
                    name: Some(target.clone()),
                    annotations: Some(BTreeMap::from([(
                        API_SERVICE_NAMESPACE_ANNOTATION.to_owned(),
                        back.clone(),
                    )])),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            match namespaces.create(&PostParams::default(), &ns).await {
                Ok(_) => tracing::info!(namespace = %target, "created service namespace"),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    return Ok(Action::requeue(std::time::Duration::from_secs(1)));
                }
                Err(e) => return Err(kube_err("create service namespace")(e)),
            }
        }
    }
    if !ctx.backend.cluster_scoped_consumers() {
        let rb = rbac::binder_role_binding(&cluster_ns, &rbac::tenant_role_name(&cluster_ns));
        Api::<RoleBinding>::namespaced(ctx.client.clone(), &target)
            .patch(
                BINDER_NAME,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&rb),
            )
            .await
            .map_err(kube_err("apply service namespace RoleBinding"))?;
    }
    if assigned.is_none() {
        let patch = serde_json::json!({ "status": { "namespace": target } });
        Api::<APIServiceNamespace>::namespaced(ctx.client.clone(), &cluster_ns)
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err("set APIServiceNamespace status"))?;
    }
    Ok(Action::await_change())
}

/// Deletes service namespaces whose APIServiceNamespace is gone: on every delete event, and for
/// all of them after each (re)list, so deletions missed while not running are caught up.
async fn collect_deleted(client: Client) {
    // Lenient: an undecodable APIServiceNamespace still exists, so its service namespace stays.
    let api = Api::<Lenient<APIServiceNamespace>>::all(client.clone());
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    let mut listing: HashSet<(String, String)> = HashSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Delete(asn)) => {
                let target = match &asn {
                    Lenient::Valid(asn) => asn.status.as_ref().and_then(|s| s.namespace.clone()),
                    Lenient::Invalid(bad) => {
                        bad.raw["status"]["namespace"].as_str().map(str::to_owned)
                    }
                };
                let cluster_ns = asn.namespace().unwrap_or_default();
                if let Some(target) = target {
                    delete_if_ours(
                        &client,
                        &target,
                        &back_reference(&cluster_ns, &asn.name_any()),
                    )
                    .await;
                }
            }
            Ok(watcher::Event::Init) => listing.clear(),
            Ok(watcher::Event::InitApply(asn)) => {
                listing.insert((asn.namespace().unwrap_or_default(), asn.name_any()));
            }
            Ok(watcher::Event::InitDone) => sweep(&client, &listing).await,
            Ok(watcher::Event::Apply(_)) => {}
            Err(e) => tracing::warn!(error = %e, "watch APIServiceNamespaces failed; retrying"),
        }
    }
}

async fn sweep(client: &Client, alive: &HashSet<(String, String)>) {
    let Ok(list) = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
    else {
        return;
    };
    for ns in list.items {
        let Some(back) = ns
            .annotations()
            .get(API_SERVICE_NAMESPACE_ANNOTATION)
            .cloned()
        else {
            continue;
        };
        let Some((cluster_ns, name)) = back.split_once('/') else {
            continue;
        };
        if !alive.contains(&(cluster_ns.to_owned(), name.to_owned())) {
            delete_if_ours(client, &ns.name_any(), &back).await;
        }
    }
}

async fn delete_if_ours(client: &Client, target: &str, back: &str) {
    let api = Api::<Namespace>::all(client.clone());
    let Ok(Some(ns)) = api.get_opt(target).await else {
        return;
    };
    if ns
        .annotations()
        .get(API_SERVICE_NAMESPACE_ANNOTATION)
        .map(String::as_str)
        != Some(back)
    {
        tracing::warn!(namespace = %target, "not deleting a namespace that does not point back to the APIServiceNamespace");
        return;
    }
    if ns.metadata.deletion_timestamp.is_none() {
        match api.delete(target, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(namespace = %target, "deleted service namespace"),
            Err(e) => {
                tracing::warn!(namespace = %target, error = %e, "delete service namespace failed")
            }
        }
    }
}

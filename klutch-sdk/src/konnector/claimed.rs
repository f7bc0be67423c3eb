//! The claimed-resource syncer (§5.12): mirrors the objects one accepted permission claim
//! selects between the consumer namespaces and their service namespaces, watching both sides in
//! the mapped namespaces only and executing what [`sync::claimed::plan`](crate::sync::claimed::plan)
//! decides.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};

use super::observe::{Hop, NoObserver, ObjectKey, SyncObserver};
use crate::api::{APIServiceNamespace, ClaimOwner, PermissionClaim};
use crate::sync::claimed::{Options, Step, owner_patch, plan};
use crate::sync::claims::{self, Selection, Side};
use crate::sync::naming::NamespaceMap;

/// What failed while syncing one claimed object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The claim's selector is invalid.
    #[error("invalid selector of the claim on {resource}")]
    Selector {
        /// The claimed resource.
        resource: String,
        /// The selector error.
        #[source]
        source: claims::Error,
    },
    /// An API call failed.
    #[error("{operation} {side:?} object {namespace}/{name}")]
    Api {
        /// What was being done (`get`, `create`, `update`, `delete`, `annotate`).
        operation: &'static str,
        /// Which cluster.
        side: Side,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Mirrors the objects one accepted claim selects, between the consumer namespaces and their
/// service namespaces.
#[derive(Clone)]
pub struct ClaimSyncer {
    consumer: Client,
    provider: Client,
    ar: ApiResource,
    claim: PermissionClaim,
    selection: Selection,
    cluster_ns: String,
    namespaces: Arc<RwLock<NamespaceMap>>,
    deleted: Arc<Mutex<HashSet<(String, String)>>>,
    observer: Arc<dyn SyncObserver>,
}

impl ClaimSyncer {
    /// A syncer for `claim` on resource `ar` (e.g. core `v1` `secrets`) of the consumer whose
    /// cluster namespace is `cluster_namespace`. Fails on an invalid selector.
    pub fn new(
        consumer: Client,
        provider: Client,
        ar: ApiResource,
        claim: PermissionClaim,
        cluster_namespace: &str,
    ) -> Result<Self> {
        let selection = Selection::new(&claim.selector).map_err(|source| Error::Selector {
            resource: ar.plural.clone(),
            source,
        })?;
        Ok(ClaimSyncer {
            consumer,
            provider,
            ar,
            claim,
            selection,
            cluster_ns: cluster_namespace.to_owned(),
            namespaces: Arc::default(),
            deleted: Arc::default(),
            observer: Arc::new(NoObserver),
        })
    }

    /// Reports latencies and failures to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn SyncObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let ctx = Arc::new(self);
        let (queue_tx, queue_rx) = futures::channel::mpsc::unbounded::<(String, String)>();
        let (map_tx, map_rx) = tokio::sync::watch::channel(NamespaceMap::default());
        let mapping_feed = {
            let ctx = ctx.clone();
            let api: Api<APIServiceNamespace> =
                Api::namespaced(ctx.provider.clone(), &ctx.cluster_ns);
            let (reader, writer) = kube::runtime::reflector::store::<APIServiceNamespace>();
            watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer)
                .for_each(move |event| {
                    if event.is_ok() {
                        let state = reader.state();
                        let mapping = NamespaceMap::from_api_service_namespaces(
                            state.iter().map(|a| a.as_ref()),
                        );
                        let mut current = ctx.namespaces.write().expect("namespace map lock");
                        if *current != mapping {
                            *current = mapping.clone();
                            map_tx.send_replace(mapping);
                        }
                    }
                    futures::future::ready(())
                })
        };
        let watches = watch_both_sides(ctx.clone(), map_rx, queue_tx.clone());
        let worker = {
            let ctx = ctx.clone();
            let in_flight: Arc<Mutex<HashSet<(String, String)>>> = Arc::default();
            queue_rx.for_each_concurrent(4, move |key| {
                let (ctx, in_flight, queue_tx) = (ctx.clone(), in_flight.clone(), queue_tx.clone());
                async move {
                    if !in_flight.lock().expect("in-flight lock").insert(key.clone()) {
                        // Already being handled: look again afterwards.
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let _ = queue_tx.unbounded_send(key);
                        });
                        return;
                    }
                    let result = reconcile(&ctx, &key.0, &key.1).await;
                    in_flight.lock().expect("in-flight lock").remove(&key);
                    if let Err(e) = result {
                        tracing::warn!(object = %format!("{}/{}", key.0, key.1), error = %e, "claimed-resource sync failed; retrying");
                        let hop = match &e {
                            Error::Api { side: Side::Provider, .. } => Hop::ClaimUp,
                            _ => Hop::ClaimDown,
                        };
                        ctx.observer.failed(hop, &ObjectKey {
                            api_version: ctx.ar.api_version.clone(),
                            kind: ctx.ar.kind.clone(),
                            namespace: Some(key.0.clone()),
                            name: key.1.clone(),
                            uid: None,
                            consumer: true,
                        }, "ClaimSyncFailed", &e.to_string());
                        // Retry with fresh state (409 conflicts included).
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let _ = queue_tx.unbounded_send(key);
                        });
                    }
                }
            })
        };
        tokio::select! {
            () = shutdown => {}
            () = mapping_feed => {}
            () = watches => {}
            () = worker => {}
        }
    }
}

/// One watch per mapped namespace on each side; every event queues `(consumer ns, name)`.
async fn watch_both_sides(
    ctx: Arc<ClaimSyncer>,
    mut map_rx: tokio::sync::watch::Receiver<NamespaceMap>,
    queue: futures::channel::mpsc::UnboundedSender<(String, String)>,
) {
    let mut running: BTreeMap<(bool, String), tokio::task::JoinHandle<()>> = BTreeMap::new();
    loop {
        let map = map_rx.borrow_and_update().clone();
        let wanted: BTreeSet<(bool, String)> = map
            .provider_namespaces()
            .flat_map(|p| {
                let c = map.to_consumer(p).unwrap_or_default().to_owned();
                [(true, c), (false, p.to_owned())]
            })
            .collect();
        running.retain(|k, t| {
            let keep = wanted.contains(k);
            if !keep {
                t.abort();
            }
            keep
        });
        for (is_consumer, ns) in wanted {
            if running.contains_key(&(is_consumer, ns.clone())) {
                continue;
            }
            let client = if is_consumer {
                ctx.consumer.clone()
            } else {
                ctx.provider.clone()
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &ctx.ar);
            let (ctx2, queue, ns2) = (ctx.clone(), queue.clone(), ns.clone());
            let task = tokio::spawn(async move {
                let events = watcher(api, watcher::Config::default()).default_backoff();
                futures::pin_mut!(events);
                while let Some(event) = events.next().await {
                    let (objects, deleted) = match event {
                        Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                            (vec![o], false)
                        }
                        Ok(watcher::Event::Delete(o)) => (vec![o], true),
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::debug!(error = %e, "claimed-resource watch failed; retrying");
                            continue;
                        }
                    };
                    for o in objects {
                        let consumer_ns = if is_consumer {
                            ns2.clone()
                        } else {
                            let map = ctx2.namespaces.read().expect("namespace map lock");
                            match map.to_consumer(&ns2) {
                                Some(c) => c.to_owned(),
                                None => continue,
                            }
                        };
                        let key = (consumer_ns, o.name_any());
                        if is_consumer && deleted {
                            ctx2.deleted
                                .lock()
                                .expect("deleted lock")
                                .insert(key.clone());
                        }
                        let _ = queue.unbounded_send(key);
                    }
                }
            });
            running.insert((is_consumer, ns), task);
        }
        if map_rx.changed().await.is_err() {
            break;
        }
    }
    std::future::pending::<()>().await;
}

async fn reconcile(ctx: &ClaimSyncer, consumer_ns: &str, name: &str) -> Result<()> {
    let started = std::time::Instant::now();
    let Some(provider_ns) = ctx
        .namespaces
        .read()
        .expect("namespace map lock")
        .to_provider(consumer_ns)
        .map(str::to_owned)
    else {
        return Ok(());
    };
    let consumer_api: Api<DynamicObject> =
        Api::namespaced_with(ctx.consumer.clone(), consumer_ns, &ctx.ar);
    let provider_api: Api<DynamicObject> =
        Api::namespaced_with(ctx.provider.clone(), &provider_ns, &ctx.ar);
    let api_err = |operation, side, namespace: &str| {
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        move |source: kube::Error| Error::Api {
            operation,
            side,
            namespace,
            name,
            source: Box::new(source),
        }
    };
    let consumer =
        consumer_api
            .get_opt(name)
            .await
            .map_err(api_err("get", Side::Consumer, consumer_ns))?;
    let provider =
        provider_api
            .get_opt(name)
            .await
            .map_err(api_err("get", Side::Provider, &provider_ns))?;
    let deleted = ctx
        .deleted
        .lock()
        .expect("deleted lock")
        .remove(&(consumer_ns.to_owned(), name.to_owned()))
        && consumer.is_none();
    let steps = plan(
        &ctx.selection,
        Options::of(&ctx.claim),
        consumer_ns,
        &provider_ns,
        consumer.as_ref(),
        provider.as_ref(),
        deleted,
    );
    for step in steps {
        match step {
            Step::PutConsumer(want) => {
                put(&consumer_api, consumer.as_ref(), want, &ctx.ar)
                    .await
                    .map_err(api_err("write", Side::Consumer, consumer_ns))?;
                ctx.observer.synced(Hop::ClaimDown, started.elapsed());
            }
            Step::PutProvider(want) => {
                put(&provider_api, provider.as_ref(), want, &ctx.ar)
                    .await
                    .map_err(api_err("write", Side::Provider, &provider_ns))?;
                ctx.observer.synced(Hop::ClaimUp, started.elapsed());
            }
            Step::AnnotateConsumer(owner) => annotate(&consumer_api, name, owner)
                .await
                .map_err(api_err("annotate", Side::Consumer, consumer_ns))?,
            Step::AnnotateProvider(owner) => annotate(&provider_api, name, owner)
                .await
                .map_err(api_err("annotate", Side::Provider, &provider_ns))?,
            Step::DeleteConsumer => delete(&consumer_api, name).await.map_err(api_err(
                "delete",
                Side::Consumer,
                consumer_ns,
            ))?,
            Step::DeleteProvider => delete(&provider_api, name).await.map_err(api_err(
                "delete",
                Side::Provider,
                &provider_ns,
            ))?,
            Step::Conflict(message) => {
                tracing::warn!(object = %format!("{consumer_ns}/{name}"), %message, "claimed-resource conflict");
                ctx.observer.failed(
                    Hop::ClaimDown,
                    &ObjectKey {
                        api_version: ctx.ar.api_version.clone(),
                        kind: ctx.ar.kind.clone(),
                        namespace: Some(consumer_ns.to_owned()),
                        name: name.to_owned(),
                        uid: consumer.as_ref().and_then(|c| c.metadata.uid.clone()),
                        consumer: true,
                    },
                    "ClaimConflict",
                    &message,
                );
            }
        }
    }
    Ok(())
}

/// Creates `want`, or replaces `existing` with it (carrying its resourceVersion, so a concurrent
/// change is a 409 and the reconcile retries with fresh state).
async fn put(
    api: &Api<DynamicObject>,
    existing: Option<&DynamicObject>,
    mut want: DynamicObject,
    ar: &ApiResource,
) -> Result<(), kube::Error> {
    want.types = Some(kube::api::TypeMeta {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
    });
    match existing {
        None => api.create(&PostParams::default(), &want).await.map(drop),
        Some(e) => {
            want.metadata.resource_version = e.metadata.resource_version.clone();
            want.metadata.finalizers = e.metadata.finalizers.clone();
            want.metadata.owner_references = e.metadata.owner_references.clone();
            api.replace(&e.name_any(), &PostParams::default(), &want)
                .await
                .map(drop)
        }
    }
}

async fn annotate(
    api: &Api<DynamicObject>,
    name: &str,
    owner: ClaimOwner,
) -> Result<(), kube::Error> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&owner_patch(owner)),
    )
    .await
    .map(drop)
}

async fn delete(api: &Api<DynamicObject>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

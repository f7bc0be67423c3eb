//! The resource syncer: spec/status/deletion sync for one resource between two clusters, a
//! kube-runtime controller on the consumer objects, triggered also by provider-side changes,
//! that executes what [`spec::plan`] decides; plus the provider-only cases:
//! adoption of provider-created objects (§5.11) and removal of bound provider copies whose
//! consumer object is gone (§5.9).
//!
//! Namespaces are mapped through APIServiceNamespaces in the provider's cluster namespace: the
//! syncer creates one per consumer namespace it meets and waits until the backend has written
//! `status.namespace`. Cluster-scoped resources are placed by their isolation mode
//! ([`placement`](crate::sync::placement)). The provider side is watched per service namespace (or
//! cluster-wide where the placement needs it), so the tenant's provider RBAC may be namespaced.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};
use serde_json::json;

use super::observe::{Hop, NoObserver, ObjectKey, SyncObserver};
use crate::api::wellknown::{BOUND_ANNOTATION, FIELD_MANAGER, SYNCER_FINALIZER};
use crate::api::{APIServiceNamespace, APIServiceNamespaceSpec};
use crate::sync::copy::is_bound;
use crate::sync::naming::NamespaceMap;
use crate::sync::placement::{ConsumerKey, Placement, Placer, WatchScope};
use crate::sync::spec::{self, Plan, Target};

/// Field manager of the consumer-side status writes (the provider-side spec writes use
/// [`FIELD_MANAGER`], so the two directions show up as two owners in `managedFields`).
pub const STATUS_FIELD_MANAGER: &str = "klutch.anynines.com/status";

/// How many objects the syncer reconciles at once.
pub const RECONCILE_CONCURRENCY: u16 = 64;

/// What failed while syncing one object. Variants name the operation and the object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the provider copy failed.
    #[error("get provider copy {namespace}/{name}")]
    GetProvider {
        /// Provider namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Applying the provider copy failed (e.g. the provider's validation rejected it).
    #[error("apply provider copy {namespace}/{name}")]
    ApplyProvider {
        /// Provider namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Deleting the provider copy failed.
    #[error("delete provider copy {namespace}/{name}")]
    DeleteProvider {
        /// Provider namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Updating the consumer object's finalizers failed.
    #[error("update finalizers of {namespace}/{name}")]
    PatchFinalizers {
        /// Consumer namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the consumer object's status failed.
    #[error("write status of {namespace}/{name}")]
    WriteStatus {
        /// Consumer namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Creating the APIServiceNamespace for a consumer namespace failed.
    #[error("create APIServiceNamespace {name} in {cluster_namespace}")]
    CreateNamespaceMapping {
        /// The cluster namespace.
        cluster_namespace: String,
        /// The consumer namespace.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The provider object at the copy's place belongs to someone else (another cluster
    /// namespace under `None` isolation, or an object we did not create): never touched.
    #[error("provider object {name} exists and does not belong to this consumer; it is left alone")]
    ForeignObject {
        /// The provider object's name.
        name: String,
    },
    /// Reading the consumer object failed.
    #[error("get consumer object {name}")]
    GetConsumer {
        /// Name (`namespace/name` for namespaced objects).
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Creating the consumer object for a provider-created object failed.
    #[error("adopt provider object {name}")]
    Adopt {
        /// The provider object's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// A stable PascalCase reason, for metrics and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::GetProvider { .. } => "GetProviderFailed",
            Error::ApplyProvider { .. } => "ApplyProviderFailed",
            Error::DeleteProvider { .. } => "DeleteProviderFailed",
            Error::PatchFinalizers { .. } => "PatchFinalizersFailed",
            Error::WriteStatus { .. } => "WriteStatusFailed",
            Error::CreateNamespaceMapping { .. } => "CreateNamespaceMappingFailed",
            Error::ForeignObject { .. } => "ForeignProviderObject",
            Error::GetConsumer { .. } => "GetConsumerFailed",
            Error::Adopt { .. } => "AdoptFailed",
        }
    }
}

impl Error {
    /// The hop the failed step belongs to.
    pub fn hop(&self) -> Hop {
        match self {
            Error::DeleteProvider { .. } => Hop::Delete,
            Error::Adopt { .. } => Hop::Adopt,
            Error::WriteStatus { .. } => Hop::StatusDown,
            _ => Hop::SpecUp,
        }
    }

    /// The message for humans: the API's own message when there is one (e.g. the provider's
    /// validation error), with what we were doing.
    pub fn api_message(&self) -> String {
        let source = match self {
            Error::GetProvider { source, .. }
            | Error::ApplyProvider { source, .. }
            | Error::DeleteProvider { source, .. }
            | Error::PatchFinalizers { source, .. }
            | Error::WriteStatus { source, .. }
            | Error::CreateNamespaceMapping { source, .. }
            | Error::GetConsumer { source, .. }
            | Error::Adopt { source, .. } => source,
            Error::ForeignObject { .. } => return self.to_string(),
        };
        match source {
            kube::Error::Api(s) => format!("{self}: {}", s.message),
            other => format!("{self}: {other}"),
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Syncs one resource (same group, version and kind on both sides) from a consumer cluster to
/// the provider's cluster namespace.
///
/// ```no_run
/// # async fn demo(consumer: kube::Client, provider: kube::Client) {
/// use kube::api::{ApiResource, GroupVersionKind};
/// use klutch_sdk::konnector::ResourceSyncer;
///
/// let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("anynines.com", "v1", "PostgresqlInstance"));
/// let syncer = ResourceSyncer::new(consumer, provider, ar, "cluster-x7k2p");
/// syncer.run(std::future::pending()).await; // until the shutdown future resolves
/// # }
/// ```
#[derive(Clone)]
pub struct ResourceSyncer {
    consumer: Client,
    provider: Client,
    ar: ApiResource,
    placer: Placer,
    adopt: bool,
    namespaces: Arc<RwLock<NamespaceMap>>,
    /// Per consumer object (`namespace/name`), the resourceVersion our last write to it
    /// replaced. While the controller's cache still shows that version, the cache has not seen
    /// our own write yet, and acting on it would repeat (or conflict with) that write.
    superseded: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    observer: Arc<dyn SyncObserver>,
}

/// Trigger for the consumer controller, fed by the provider watches.
type Trigger = futures::channel::mpsc::UnboundedSender<ObjectRef<DynamicObject>>;

impl ResourceSyncer {
    /// A syncer for namespaced resource `ar`, writing into the service namespaces of the
    /// provider's `cluster_namespace` (watched one by one). See [`with_placement`](Self::with_placement)
    /// for cluster-scoped resources and cluster-wide provider watches.
    pub fn new(
        consumer: Client,
        provider: Client,
        ar: ApiResource,
        cluster_namespace: &str,
    ) -> Self {
        ResourceSyncer {
            consumer,
            provider,
            ar,
            placer: Placer {
                placement: Placement::Namespaced {
                    cluster_informer: false,
                },
                cluster_ns: cluster_namespace.to_owned(),
                cluster_ns_uid: None,
            },
            adopt: true,
            namespaces: Arc::new(RwLock::new(NamespaceMap::default())),
            superseded: Arc::default(),
            observer: Arc::new(NoObserver),
        }
    }

    /// Places provider copies by `placement` (cluster-scoped isolation, informer scope).
    #[must_use]
    pub fn with_placement(mut self, placement: Placement) -> Self {
        self.placer.placement = placement;
        self
    }

    /// Whether provider objects without `bound` are adopted into the consumer cluster (default:
    /// yes, §5.11).
    #[must_use]
    pub fn with_adoption(mut self, adopt: bool) -> Self {
        self.adopt = adopt;
        self
    }

    /// Reports hop latencies and failures to `observer` (metrics, Events).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn SyncObserver>) -> Self {
        self.observer = observer;
        self
    }

    fn consumer_api(&self, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.consumer.clone(), ns, &self.ar),
            None => Api::all_with(self.consumer.clone(), &self.ar),
        }
    }

    fn provider_api(&self, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.provider.clone(), ns, &self.ar),
            None => Api::all_with(self.provider.clone(), &self.ar),
        }
    }

    fn object_ref(&self, key: &ConsumerKey) -> ObjectRef<DynamicObject> {
        let r = ObjectRef::new_with(&key.name, self.ar.clone());
        match &key.namespace {
            Some(ns) => r.within(ns),
            None => r,
        }
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
        // Cluster-scoped copies are owned by the cluster Namespace: learn its UID first.
        if matches!(self.placer.placement, Placement::Cluster(_))
            && self.placer.cluster_ns_uid.is_none()
        {
            let namespaces: Api<Namespace> = Api::all(self.provider.clone());
            let mut delay = Duration::from_millis(200);
            loop {
                match namespaces.get_opt(&self.placer.cluster_ns).await {
                    Ok(Some(ns)) => {
                        self.placer.cluster_ns_uid = ns.metadata.uid;
                        break;
                    }
                    Ok(None) => {
                        tracing::warn!(namespace = %self.placer.cluster_ns, "cluster namespace not found; copies get no owner reference");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the cluster namespace failed; retrying");
                        tokio::select! {
                            () = shutdown.clone() => return,
                            () = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        let ar = self.ar.clone();
        let consumer_api: Api<DynamicObject> = Api::all_with(self.consumer.clone(), &ar);
        let mappings: Api<APIServiceNamespace> =
            Api::namespaced(self.provider.clone(), &self.placer.cluster_ns);

        // Keep the namespace map current from the APIServiceNamespaces; every change re-triggers
        // the provider watches, whose (re)lists re-trigger the consumer objects.
        let (map_tx, map_rx) = tokio::sync::watch::channel(NamespaceMap::default());
        let map = self.namespaces.clone();
        let (reader, writer) = kube::runtime::reflector::store::<APIServiceNamespace>();
        // Every event, including the end of an initial list (InitDone, when the store swaps in the
        // listed objects), recomputes the map from the store.
        let mapping_feed = watcher(mappings, watcher::Config::default())
            .backoff(watch_backoff())
            .reflect(writer)
            .for_each(move |event| {
                let map = map.clone();
                let reader = reader.clone();
                let map_tx = map_tx.clone();
                async move {
                    if let Err(e) = event {
                        tracing::warn!(error = %e, "watching APIServiceNamespaces failed; retrying");
                        return;
                    }
                    let state = reader.state();
                    let mapping = NamespaceMap::from_api_service_namespaces(state.iter().map(|a| a.as_ref()));
                    let mut current = map.write().expect("namespace map lock");
                    if *current != mapping {
                        tracing::debug!(?mapping, "namespace mapping changed");
                        *current = mapping.clone();
                        map_tx.send_replace(mapping);
                    }
                }
            });

        let (trigger, triggers) = futures::channel::mpsc::unbounded();
        let (orphans_tx, orphans_rx) = futures::channel::mpsc::unbounded::<ConsumerKey>();
        let ctx = Arc::new(self);
        let controller = Controller::new_with(consumer_api, watcher::Config::default(), ar.clone())
            .trigger_backoff(watch_backoff())
            .reconcile_on(triggers)
            // Bounded: with unbounded concurrency a burst of a thousand creates fans out into a
            // thousand simultaneous reconciles that only queue up in two apiservers.
            .with_config(controller::Config::default().concurrency(RECONCILE_CONCURRENCY));
        let store = controller.store();
        let provider_feed = provider_watches(
            ctx.clone(),
            map_rx,
            store.clone(),
            trigger.clone(),
            orphans_tx,
        );
        let provider_only = provider_only(ctx.clone(), orphans_rx, store, trigger);
        let controller = controller
            .graceful_shutdown_on(shutdown.clone())
            .run(reconcile, error_policy, ctx)
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "sync reconcile ended with an error");
                }
            });
        tokio::select! {
            () = controller => {}
            () = mapping_feed => {}
            () = provider_feed => {}
            () = provider_only => {}
        }
    }
}

/// Runs one provider watch per [`WatchScope`] the placement needs under the current mapping,
/// and routes each provider object: to the consumer controller when its consumer object is
/// cached, else to the provider-only handler.
async fn provider_watches(
    ctx: Arc<ResourceSyncer>,
    mut map_rx: tokio::sync::watch::Receiver<NamespaceMap>,
    store: Store<DynamicObject>,
    trigger: Trigger,
    orphans: futures::channel::mpsc::UnboundedSender<ConsumerKey>,
) {
    let mut running: BTreeMap<WatchScope, tokio::task::JoinHandle<()>> = BTreeMap::new();
    loop {
        let map = map_rx.borrow_and_update().clone();
        let wanted = ctx.placer.watch_scopes(&map);
        running.retain(|scope, task| {
            let keep = wanted.contains(scope);
            if !keep {
                task.abort();
            }
            keep
        });
        for scope in wanted {
            if running.contains_key(&scope) {
                continue;
            }
            let api = match &scope {
                WatchScope::Cluster => ctx.provider_api(None),
                WatchScope::Namespace(ns) => ctx.provider_api(Some(ns)),
            };
            let (ctx, store, trigger, orphans) =
                (ctx.clone(), store.clone(), trigger.clone(), orphans.clone());
            let task = tokio::spawn(async move {
                let events = watcher(api, watcher::Config::default())
                    .backoff(watch_backoff())
                    .touched_objects();
                futures::pin_mut!(events);
                while let Some(event) = events.next().await {
                    let obj = match event {
                        Ok(obj) => obj,
                        Err(e) => {
                            tracing::debug!(error = %e, "provider watch failed; retrying");
                            continue;
                        }
                    };
                    let key = {
                        let map = ctx.namespaces.read().expect("namespace map lock");
                        ctx.placer.consumer_key(&obj.metadata, &map)
                    };
                    let Some(key) = key else { continue };
                    let r = ctx.object_ref(&key);
                    if store.get(&r).is_some() {
                        let _ = trigger.unbounded_send(r);
                    } else {
                        let _ = orphans.unbounded_send(key);
                    }
                }
            });
            running.insert(scope, task);
        }
        if map_rx.changed().await.is_err() {
            break;
        }
    }
    for (_, task) in running {
        task.abort();
    }
    std::future::pending::<()>().await;
}

/// Handles provider objects without a cached consumer object, at most 16 at a time: re-checks
/// both sides live, then adopts the provider object (no `bound`) or deletes it (it was bound, so
/// its consumer object is gone).
async fn provider_only(
    ctx: Arc<ResourceSyncer>,
    keys: futures::channel::mpsc::UnboundedReceiver<ConsumerKey>,
    store: Store<DynamicObject>,
    trigger: Trigger,
) {
    // Nothing is decided before the consumer cache is complete.
    if store.wait_until_ready().await.is_err() {
        return;
    }
    let in_flight: Arc<std::sync::Mutex<std::collections::HashSet<ConsumerKey>>> = Arc::default();
    keys.for_each_concurrent(16, |key| {
        let (ctx, store, trigger, in_flight) = (ctx.clone(), store.clone(), trigger.clone(), in_flight.clone());
        async move {
            if !in_flight.lock().expect("in-flight lock").insert(key.clone()) {
                return;
            }
            let r = ctx.object_ref(&key);
            if store.get(&r).is_some() {
                let _ = trigger.unbounded_send(r);
            } else if let Err(e) = handle_provider_only(&ctx, &key, &trigger).await {
                tracing::warn!(object = %key.name, reason = e.reason(), error = %e, "provider-side sync failed");
                ctx.observer.failed(e.hop(), &ObjectKey {
                    api_version: ctx.ar.api_version.clone(),
                    kind: ctx.ar.kind.clone(),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    uid: None,
                    consumer: false,
                }, e.reason(), &e.api_message());
            }
            in_flight.lock().expect("in-flight lock").remove(&key);
        }
    })
    .await;
}

async fn handle_provider_only(
    ctx: &ResourceSyncer,
    key: &ConsumerKey,
    trigger: &Trigger,
) -> Result<()> {
    let started = std::time::Instant::now();
    let Some(pkey) = ({
        let map = ctx.namespaces.read().expect("namespace map lock");
        ctx.placer.provider_key(key, &map)
    }) else {
        return Ok(());
    };
    let provider_api = ctx.provider_api(pkey.namespace.as_deref());
    let fresh = provider_api
        .get_opt(&pkey.name)
        .await
        .map_err(|source| Error::GetProvider {
            namespace: pkey.namespace.clone().unwrap_or_default(),
            name: pkey.name.clone(),
            source,
        })?;
    let Some(fresh) = fresh.filter(|p| p.metadata.deletion_timestamp.is_none()) else {
        return Ok(());
    };
    // Still ours (the annotation may have changed since the event)?
    let still_ours = ctx
        .placer
        .consumer_key(
            &fresh.metadata,
            &ctx.namespaces.read().expect("namespace map lock"),
        )
        .as_ref()
        == Some(key);
    if !still_ours {
        return Ok(());
    }
    let consumer_api = ctx.consumer_api(key.namespace.as_deref());
    let shown = match &key.namespace {
        Some(ns) => format!("{ns}/{}", key.name),
        None => key.name.clone(),
    };
    match consumer_api.get(&key.name).await {
        Ok(_) => {
            let _ = trigger.unbounded_send(ctx.object_ref(key));
            Ok(())
        }
        // Only an object-level NotFound counts (a missing resource type is a 404 too).
        Err(kube::Error::Api(s))
            if s.code == 404 && s.details.as_ref().is_some_and(|d| d.name == key.name) =>
        {
            if is_bound(&fresh) {
                tracing::info!(object = %shown, "consumer object gone; deleting its bound provider copy");
                let dp =
                    DeleteParams {
                        preconditions: fresh.metadata.uid.clone().map(|uid| {
                            kube::api::Preconditions {
                                uid: Some(uid),
                                resource_version: None,
                            }
                        }),
                        ..DeleteParams::background()
                    };
                match provider_api.delete(&pkey.name, &dp).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                    Err(source) => {
                        return Err(Error::DeleteProvider {
                            namespace: pkey.namespace.clone().unwrap_or_default(),
                            name: pkey.name.clone(),
                            source,
                        });
                    }
                }
                ctx.observer.synced(Hop::Delete, started.elapsed());
            } else if ctx.adopt {
                tracing::info!(object = %shown, "adopting a provider-created object");
                let mut adopted = ctx.placer.adopted(&fresh, key);
                adopted.types = Some(kube::api::TypeMeta {
                    api_version: ctx.ar.api_version.clone(),
                    kind: ctx.ar.kind.clone(),
                });
                match consumer_api.create(&PostParams::default(), &adopted).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(source) => {
                        return Err(Error::Adopt {
                            name: shown,
                            source,
                        });
                    }
                }
                // Bound on the provider object itself (Klutch writes it to the wrong cluster).
                let bound = json!({ "metadata": { "annotations": { BOUND_ANNOTATION: "true" } } });
                provider_api
                    .patch(&pkey.name, &PatchParams::default(), &Patch::Merge(&bound))
                    .await
                    .map_err(|source| Error::ApplyProvider {
                        namespace: pkey.namespace.clone().unwrap_or_default(),
                        name: pkey.name.clone(),
                        source,
                    })?;
                ctx.observer.synced(Hop::Adopt, started.elapsed());
            }
            Ok(())
        }
        Err(source) => Err(Error::GetConsumer {
            name: shown,
            source,
        }),
    }
}

/// Watch retry delays: 200 ms doubling to at most 5 s, with jitter. kube-runtime's default caps at
/// 30 s, which after a short apiserver outage (or a CRD that is Established a moment before it is
/// served) would leave objects unsynced for half a minute.
fn watch_backoff() -> watcher::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

fn error_policy(obj: Arc<DynamicObject>, err: &Error, ctx: Arc<ResourceSyncer>) -> Action {
    tracing::warn!(object = %obj.name_any(), reason = err.reason(), error = %err, "sync failed; retrying");
    ctx.observer.failed(
        err.hop(),
        &ObjectKey::of(&obj, &ctx.ar, true),
        err.reason(),
        &err.api_message(),
    );
    let conflict = matches!(
        err,
        Error::PatchFinalizers { source: kube::Error::Api(s), .. } | Error::WriteStatus { source: kube::Error::Api(s), .. }
            if s.code == 409
    );
    Action::requeue(if conflict {
        Duration::from_millis(50)
    } else {
        Duration::from_secs(2)
    })
}

async fn reconcile(consumer: Arc<DynamicObject>, ctx: Arc<ResourceSyncer>) -> Result<Action> {
    let started = std::time::Instant::now();
    let name = consumer.name_any();
    let consumer_ns = consumer.namespace();
    let ckey = ConsumerKey {
        namespace: consumer_ns.clone(),
        name: name.clone(),
    };
    let key = match &consumer_ns {
        Some(ns) => format!("{ns}/{name}"),
        None => name.clone(),
    };
    {
        let mut superseded = ctx.superseded.lock().expect("superseded lock");
        match superseded.get(&key) {
            Some(rv) if Some(rv) == consumer.metadata.resource_version.as_ref() => {
                // Our own last write is not in the cache yet; its watch event re-triggers us.
                return Ok(Action::requeue(Duration::from_millis(500)));
            }
            Some(_) => {
                superseded.remove(&key);
            }
            None => {}
        }
    }
    let pkey = {
        let map = ctx.namespaces.read().expect("namespace map lock");
        ctx.placer.provider_key(&ckey, &map)
    };
    let provider_api = pkey
        .as_ref()
        .map(|k| ctx.provider_api(k.namespace.as_deref()));
    let provider = match (&provider_api, &pkey) {
        (Some(api), Some(k)) => {
            api.get_opt(&k.name)
                .await
                .map_err(|source| Error::GetProvider {
                    namespace: k.namespace.clone().unwrap_or_default(),
                    name: k.name.clone(),
                    source,
                })?
        }
        _ => None,
    };
    // Never operate on a provider object that is not this consumer's (None isolation, or a
    // foreign object at the prefixed name).
    if let (Some(p), Some(k)) = (&provider, &pkey) {
        let owner = {
            let map = ctx.namespaces.read().expect("namespace map lock");
            ctx.placer.consumer_key(&p.metadata, &map)
        };
        if owner.as_ref() != Some(&ckey) {
            return Err(Error::ForeignObject {
                name: k.name.clone(),
            });
        }
    }
    let target = pkey.as_ref().map(|k| Target {
        api_version: ctx.ar.api_version.clone(),
        kind: ctx.ar.kind.clone(),
        name: k.name.clone(),
        namespace: k.namespace.clone(),
        annotations: ctx.placer.annotations(),
        owner_references: ctx.placer.owner_references(),
    });
    let consumer_api = ctx.consumer_api(consumer_ns.as_deref());
    match spec::plan(&consumer, provider.as_ref(), target.as_ref()) {
        Plan::NamespacePending => {
            if let Some(ns) = &consumer_ns {
                ensure_mapping(&ctx, ns).await?;
            }
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Plan::WaitForProviderDeletion => Ok(Action::requeue(Duration::from_secs(1))),
        Plan::Act(actions) => {
            let (Some(provider_api), Some(pkey)) = (provider_api, pkey) else {
                // Deleting a consumer object whose namespace was never mapped: only the
                // finalizer may need to go.
                for action in actions {
                    if action == spec::Action::RemoveFinalizer {
                        set_finalizer(&consumer_api, &consumer, false).await?;
                    }
                }
                return Ok(Action::await_change());
            };
            let provider_ns = pkey.namespace.clone().unwrap_or_default();
            for action in actions {
                // (Not after removing the finalizer: the object is then gone, and its entry would
                // never be cleared.)
                let writes_consumer = matches!(
                    action,
                    spec::Action::AddFinalizer | spec::Action::SetConsumerStatus(_)
                );
                let hop = match &action {
                    spec::Action::ApplyProvider(_) => Some(Hop::SpecUp),
                    spec::Action::SetConsumerStatus(_) => Some(Hop::StatusDown),
                    spec::Action::DeleteProvider => Some(Hop::Delete),
                    _ => None,
                };
                execute(
                    action,
                    &consumer,
                    &consumer_api,
                    &provider_api,
                    &provider_ns,
                    &pkey.name,
                    &ctx.ar,
                )
                .await?;
                if let Some(hop) = hop {
                    ctx.observer.synced(hop, started.elapsed());
                }
                if writes_consumer && let Some(rv) = consumer.metadata.resource_version.clone() {
                    ctx.superseded
                        .lock()
                        .expect("superseded lock")
                        .insert(key.clone(), rv);
                }
            }
            Ok(Action::requeue(Duration::from_secs(300)))
        }
    }
}

async fn execute(
    action: spec::Action,
    consumer: &DynamicObject,
    consumer_api: &Api<DynamicObject>,
    provider_api: &Api<DynamicObject>,
    provider_ns: &str,
    provider_name: &str,
    ar: &ApiResource,
) -> Result<()> {
    let name = consumer.name_any();
    match action {
        spec::Action::AddFinalizer => set_finalizer(consumer_api, consumer, true).await,
        spec::Action::RemoveFinalizer => set_finalizer(consumer_api, consumer, false).await,
        spec::Action::ApplyProvider(intent) => provider_api
            .patch(
                provider_name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&intent),
            )
            .await
            .map(drop)
            .map_err(|source| Error::ApplyProvider {
                namespace: provider_ns.to_owned(),
                name: provider_name.to_owned(),
                source,
            }),
        spec::Action::DeleteProvider => match provider_api
            .delete(provider_name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(Error::DeleteProvider {
                namespace: provider_ns.to_owned(),
                name: provider_name.to_owned(),
                source,
            }),
        },
        spec::Action::SetConsumerStatus(status) => {
            // Server-side apply of the whole status under our own field manager: keys the
            // provider dropped are dropped here too (we stop applying them), and there is no
            // resourceVersion to conflict on, so a burst of status changes costs one write each.
            // A status patch never creates the object.
            let mut intent = json!({ "apiVersion": ar.api_version, "kind": ar.kind });
            if let Some(status) = status {
                intent["status"] = status;
            }
            consumer_api
                .patch_status(
                    &name,
                    &PatchParams::apply(STATUS_FIELD_MANAGER).force(),
                    &Patch::Apply(&intent),
                )
                .await
                .map(drop)
                .map_err(|source| Error::WriteStatus {
                    namespace: consumer.namespace().unwrap_or_default(),
                    name,
                    source,
                })
        }
    }
}

/// Adds or removes our finalizer with a merge patch that carries the resourceVersion, so a
/// concurrent change of the finalizer list is a conflict rather than a lost update. Adding it also
/// marks the object `klutch.anynines.com/bound: "true"`, in the same write.
async fn set_finalizer(api: &Api<DynamicObject>, obj: &DynamicObject, present: bool) -> Result<()> {
    let mut finalizers: Vec<String> = obj
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != SYNCER_FINALIZER)
        .collect();
    if present {
        finalizers.push(SYNCER_FINALIZER.to_owned());
    }
    let mut patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": obj.resource_version() } });
    if present {
        patch["metadata"]["annotations"] = json!({ BOUND_ANNOTATION: "true" });
    }
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Gone already: nothing left to finalise.
        Err(kube::Error::Api(s)) if s.code == 404 && !present => Ok(()),
        Err(source) => Err(Error::PatchFinalizers {
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            source,
        }),
    }
}

async fn ensure_mapping(ctx: &ResourceSyncer, consumer_ns: &str) -> Result<()> {
    let api: Api<APIServiceNamespace> =
        Api::namespaced(ctx.provider.clone(), &ctx.placer.cluster_ns);
    let mapping = APIServiceNamespace::new(consumer_ns, APIServiceNamespaceSpec {});
    match api.create(&PostParams::default(), &mapping).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(Error::CreateNamespaceMapping {
            cluster_namespace: ctx.placer.cluster_ns.clone(),
            name: consumer_ns.to_owned(),
            source,
        }),
    }
}

//! The IO side of spec/status/deletion sync for one namespaced resource between two clusters:
//! a kube-runtime controller on the consumer objects, triggered also by provider-side changes,
//! that executes what [`spec::plan`](super::spec::plan) decides.
//!
//! Namespaces are mapped through APIServiceNamespaces in the provider's cluster namespace: the
//! syncer creates one per consumer namespace it meets and waits until the backend has written
//! `status.namespace`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};
use serde_json::json;

use super::naming::NamespaceMap;
use super::observe::{Hop, NoObserver, ObjectKey, SyncObserver};
use super::spec::{self, Plan, Target};
use crate::api::wellknown::{FIELD_MANAGER, SYNCER_FINALIZER};

/// Field manager of the consumer-side status writes (the provider-side spec writes use
/// [`FIELD_MANAGER`], so the two directions show up as two owners in `managedFields`).
pub const STATUS_FIELD_MANAGER: &str = "klutch.anynines.com/status";

/// How many objects the syncer reconciles at once.
pub const RECONCILE_CONCURRENCY: u16 = 64;
use crate::api::{APIServiceNamespace, APIServiceNamespaceSpec};

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
    /// The consumer object has no namespace (cluster-scoped resources are not supported here).
    #[error("{name} is cluster-scoped; this syncer handles namespaced resources")]
    ClusterScoped {
        /// Name.
        name: String,
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
            Error::ClusterScoped { .. } => "ClusterScopedUnsupported",
        }
    }
}

impl Error {
    /// The hop the failed step belongs to.
    pub fn hop(&self) -> Hop {
        match self {
            Error::DeleteProvider { .. } => Hop::Delete,
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
            | Error::CreateNamespaceMapping { source, .. } => source,
            Error::ClusterScoped { .. } => return self.to_string(),
        };
        match source {
            kube::Error::Api(s) => format!("{self}: {}", s.message),
            other => format!("{self}: {other}"),
        }
    }
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Syncs one namespaced resource (same group, version and kind on both sides) from a consumer
/// cluster to the provider's cluster namespace.
///
/// ```no_run
/// # async fn demo(consumer: kube::Client, provider: kube::Client) {
/// use kube::api::{ApiResource, GroupVersionKind};
/// use klutch_sdk::sync::syncer::ResourceSyncer;
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
    cluster_namespace: String,
    namespaces: Arc<RwLock<NamespaceMap>>,
    /// Per consumer object (`namespace/name`), the resourceVersion our last write to it
    /// replaced. While the controller's cache still shows that version, the cache has not seen
    /// our own write yet, and acting on it would repeat (or conflict with) that write.
    superseded: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
    observer: Arc<dyn SyncObserver>,
}

impl ResourceSyncer {
    /// A syncer for resource `ar`, writing into the provider's `cluster_namespace`.
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
            cluster_namespace: cluster_namespace.to_owned(),
            namespaces: Arc::new(RwLock::new(NamespaceMap::default())),
            superseded: Arc::default(),
            observer: Arc::new(NoObserver),
        }
    }

    /// Reports hop latencies and failures to `observer` (metrics, Events).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn SyncObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        let ar = self.ar.clone();
        let consumer_api: Api<DynamicObject> = Api::all_with(self.consumer.clone(), &ar);
        let provider_api: Api<DynamicObject> = Api::all_with(self.provider.clone(), &ar);
        let mappings: Api<APIServiceNamespace> =
            Api::namespaced(self.provider.clone(), &self.cluster_namespace);

        // Keep the namespace map current from the APIServiceNamespaces; every change re-triggers
        // the consumer objects of that namespace through the provider watch below.
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
                        *current = mapping;
                    }
                }
            });

        let map = self.namespaces.clone();
        let mapper_ar = ar.clone();
        let ctx = Arc::new(self);
        let controller = Controller::new_with(consumer_api, watcher::Config::default(), ar.clone())
            .trigger_backoff(watch_backoff())
            .watches_with(
                provider_api,
                ar.clone(),
                watcher::Config::default(),
                move |obj: DynamicObject| {
                    let ns = obj.namespace().unwrap_or_default();
                    let consumer_ns = map
                        .read()
                        .expect("namespace map lock")
                        .to_consumer(&ns)
                        .map(str::to_owned);
                    consumer_ns.map(|cns| {
                        ObjectRef::new_with(&obj.name_any(), mapper_ar.clone()).within(&cns)
                    })
                },
            )
            // Bounded: with unbounded concurrency a burst of a thousand creates fans out into a
            // thousand simultaneous reconciles that only queue up in two apiservers.
            .with_config(controller::Config::default().concurrency(RECONCILE_CONCURRENCY))
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, ctx)
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "sync reconcile ended with an error");
                }
            });
        tokio::select! {
            () = controller => {}
            () = mapping_feed => {}
        }
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
    let Some(consumer_ns) = consumer.namespace() else {
        return Err(Error::ClusterScoped { name });
    };
    let key = format!("{consumer_ns}/{name}");
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
    let provider_ns = ctx
        .namespaces
        .read()
        .expect("namespace map lock")
        .to_provider(&consumer_ns)
        .map(str::to_owned);
    let provider_api = provider_ns
        .as_ref()
        .map(|ns| Api::<DynamicObject>::namespaced_with(ctx.provider.clone(), ns, &ctx.ar));
    let provider = match (&provider_api, &provider_ns) {
        (Some(api), Some(ns)) => api
            .get_opt(&name)
            .await
            .map_err(|source| Error::GetProvider {
                namespace: ns.clone(),
                name: name.clone(),
                source,
            })?,
        _ => None,
    };
    let target = provider_ns.as_ref().map(|ns| Target {
        api_version: ctx.ar.api_version.clone(),
        kind: ctx.ar.kind.clone(),
        name: name.clone(),
        namespace: Some(ns.clone()),
        annotations: BTreeMap::new(),
    });
    let consumer_api: Api<DynamicObject> =
        Api::namespaced_with(ctx.consumer.clone(), &consumer_ns, &ctx.ar);
    match spec::plan(&consumer, provider.as_ref(), target.as_ref()) {
        Plan::NamespacePending => {
            ensure_mapping(&ctx, &consumer_ns).await?;
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Plan::WaitForProviderDeletion => Ok(Action::requeue(Duration::from_secs(1))),
        Plan::Act(actions) => {
            let (Some(provider_api), Some(provider_ns)) = (provider_api, provider_ns) else {
                // Deleting a consumer object whose namespace was never mapped: only the
                // finalizer may need to go.
                for action in actions {
                    if action == spec::Action::RemoveFinalizer {
                        set_finalizer(&consumer_api, &consumer, false).await?;
                    }
                }
                return Ok(Action::await_change());
            };
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
    ar: &ApiResource,
) -> Result<()> {
    let name = consumer.name_any();
    match action {
        spec::Action::AddFinalizer => set_finalizer(consumer_api, consumer, true).await,
        spec::Action::RemoveFinalizer => set_finalizer(consumer_api, consumer, false).await,
        spec::Action::ApplyProvider(intent) => provider_api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&intent),
            )
            .await
            .map(drop)
            .map_err(|source| Error::ApplyProvider {
                namespace: provider_ns.to_owned(),
                name,
                source,
            }),
        spec::Action::DeleteProvider => match provider_api
            .delete(&name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(source) => Err(Error::DeleteProvider {
                namespace: provider_ns.to_owned(),
                name,
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
/// concurrent change of the finalizer list is a conflict rather than a lost update.
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
    let patch = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": obj.resource_version() } });
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
        Api::namespaced(ctx.provider.clone(), &ctx.cluster_namespace);
    let mapping = APIServiceNamespace::new(consumer_ns, APIServiceNamespaceSpec {});
    match api.create(&PostParams::default(), &mapping).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(Error::CreateNamespaceMapping {
            cluster_namespace: ctx.cluster_namespace.clone(),
            name: consumer_ns.to_owned(),
            source,
        }),
    }
}

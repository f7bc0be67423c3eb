//! The generic managed reconciler: crossplane-runtime's algorithm (spec 2.2) for any kind
//! that implements [`ExternalKind`]. A kind supplies Connect, Observe, Create, Update and
//! Delete; this module does everything else — management and deletion policies, the pause
//! annotation, the finalizer, ProviderConfigUsage tracking, the create-pending guard for
//! non-idempotent creates, connection Secrets, the `Ready`/`Synced` conditions, Events,
//! requeues and exponential backoff.
//!
//! Every reconcile reads the object from the API server (not from the watch cache), so a
//! write-ahead id is never missed because a cache lags.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{PredicateConfig, WatchStreamExt as _, reflector, watcher};

use super::conditions::{self, READY};
use super::connection;
use super::error::ExternalError;
use super::meta::{
    self, EXTERNAL_CREATE_FAILED, EXTERNAL_CREATE_PENDING, EXTERNAL_CREATE_SUCCEEDED,
};
use super::policies::Policies;
use super::resource::Managed;
use super::store::{self, StoreError};
use super::usage::UsageTracker;
use crate::config::ClientCache;
use crate::metrics::Metrics;

/// Reconciler settings (the provider's flags).
#[derive(Clone, Debug)]
pub struct Options {
    /// Requeue interval after a successful reconcile (±10 % jitter).
    pub poll: Duration,
    /// Full resync period.
    pub sync: Duration,
    /// Concurrent reconciles per controller.
    pub max_reconcile_rate: u16,
    /// Honour non-default `managementPolicies`.
    pub enable_management_policies: bool,
    /// Budget of one reconcile.
    pub reconcile_timeout: Duration,
    /// Timeout of one broker request.
    pub broker_timeout: Duration,
    /// Timeout of one Backup Manager request.
    pub backup_manager_timeout: Duration,
    /// How long the broker catalog is cached per ProviderConfig.
    pub catalog_ttl: Duration,
    /// Platform limit for asynchronous operations.
    pub max_polling_duration: Duration,
    /// Deprovision failed provisions automatically and start over (spec 4.6).
    pub orphan_mitigation: bool,
    /// Only reconcile managed resources matching this label selector (sharding, tests).
    pub label_selector: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll: Duration::from_secs(60),
            sync: Duration::from_secs(3600),
            max_reconcile_rate: 10,
            enable_management_policies: false,
            reconcile_timeout: Duration::from_secs(120),
            broker_timeout: Duration::from_secs(60),
            backup_manager_timeout: Duration::from_secs(60),
            catalog_ttl: Duration::from_secs(60),
            max_polling_duration: Duration::from_secs(24 * 3600),
            orphan_mitigation: false,
            label_selector: None,
        }
    }
}

/// State shared by every controller of one provider process.
pub struct Shared {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// The settings.
    pub options: Options,
    /// ProviderConfigUsage tracking.
    pub usage: UsageTracker,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Broker and Backup Manager clients per ProviderConfig.
    pub clients: ClientCache,
    recorder: Recorder,
    failures: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Shared state for `client`.
    pub fn new(client: kube::Client, options: Options, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: "provider-anynines".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Shared {
            recorder: Recorder::new(client.clone(), reporter),
            clients: ClientCache::new(&options, metrics.clone()),
            client,
            options,
            usage: UsageTracker::new(),
            metrics,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes an Event about `obj` (failures to publish are logged, never fatal).
    pub async fn event<K: kube::Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: reason.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::debug!(error = %e, "cannot publish event");
        }
    }

    fn backoff(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        let base = Duration::from_secs(1).saturating_mul(1u32 << (*n - 1).min(6));
        jitter(base.min(Duration::from_secs(60)))
    }

    fn reset_backoff(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// ±10 % jitter.
pub fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.9 + fastrand::f64() * 0.2)
}

/// What Observe found.
#[derive(Debug, Default)]
pub struct Observation {
    /// The external resource exists.
    pub exists: bool,
    /// It matches the spec (nothing to update).
    pub up_to_date: bool,
    /// Connection details to publish.
    pub connection_details: Option<BTreeMap<String, String>>,
    /// Poll again after this (a running operation); default `--poll`.
    pub requeue_after: Option<Duration>,
}

/// What Create or Update did.
#[derive(Debug, Default)]
pub struct Creation {
    /// Connection details to publish.
    pub connection_details: Option<BTreeMap<String, String>>,
    /// Observe again after this; default 1 s.
    pub requeue_after: Option<Duration>,
}

/// What Delete did.
#[derive(Debug, Default)]
pub struct Deletion {
    /// Observe again after this; default 5 s.
    pub requeue_after: Option<Duration>,
}

/// The reconcile context handed to a kind: the API of its objects and the shared state, with
/// write-ahead helpers.
pub struct Cx<'a, K: Managed> {
    /// The shared state.
    pub shared: &'a Shared,
    /// The API of the kind.
    pub api: &'a Api<K>,
    /// The effective management policies of the object being reconciled.
    pub policies: &'a Policies,
}

impl<K: Managed> Cx<'_, K> {
    /// Persists the status now (write-ahead).
    pub async fn save_status(&self, mr: &K) -> Result<(), ExternalError> {
        store::apply_status(self.api, mr)
            .await
            .map_err(ExternalError::internal)
    }

    /// Persists the owned annotations now (write-ahead), keeping the finalizer.
    pub async fn save_meta(&self, mr: &mut K) -> Result<(), ExternalError> {
        let keep = store::has_finalizer(mr);
        store::apply_metadata(self.api, mr, keep)
            .await
            .map_err(ExternalError::internal)
    }

    /// The settings.
    pub fn options(&self) -> &Options {
        &self.shared.options
    }
}

/// Sets an annotation on `mr` in memory.
pub fn set_annotation<K: Managed>(mr: &mut K, key: &str, value: impl Into<String>) {
    mr.meta_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_owned(), value.into());
}

/// One managed-resource kind's external operations (crossplane-runtime's `ExternalClient`).
pub trait ExternalKind<K: Managed>: Send + Sync + 'static {
    /// The controller's name (metrics, logs).
    const CONTROLLER: &'static str;
    /// Whether Create may be repeated safely after a lost answer. When false, the
    /// create-pending guard applies (spec 2.2 step 6) and [`ExternalKind::recover_create`] is
    /// asked first.
    const IDEMPOTENT_CREATE: bool = true;
    /// A connected client.
    type Conn: Send + Sync;

    /// Resolves the ProviderConfig and builds a client. The reconciler records the
    /// ProviderConfigUsage afterwards.
    fn connect(
        &self,
        cx: &Cx<'_, K>,
        mr: &K,
    ) -> impl Future<Output = Result<Self::Conn, ExternalError>> + Send;

    /// Tries to find the result of a Create whose answer was lost; `Ok(true)` when the
    /// external id was recovered (and persisted).
    fn recover_create(
        &self,
        _conn: &Self::Conn,
        _cx: &Cx<'_, K>,
        _mr: &mut K,
    ) -> impl Future<Output = Result<bool, ExternalError>> + Send {
        async { Ok(false) }
    }

    /// Reads the external resource, fills `status.atProvider` and the `Ready` condition.
    fn observe(
        &self,
        conn: &Self::Conn,
        cx: &Cx<'_, K>,
        mr: &mut K,
    ) -> impl Future<Output = Result<Observation, ExternalError>> + Send;

    /// Creates the external resource.
    fn create(
        &self,
        conn: &Self::Conn,
        cx: &Cx<'_, K>,
        mr: &mut K,
    ) -> impl Future<Output = Result<Creation, ExternalError>> + Send;

    /// Brings the external resource in line with the spec.
    fn update(
        &self,
        conn: &Self::Conn,
        cx: &Cx<'_, K>,
        mr: &mut K,
    ) -> impl Future<Output = Result<Creation, ExternalError>> + Send;

    /// Deletes the external resource.
    fn delete(
        &self,
        conn: &Self::Conn,
        cx: &Cx<'_, K>,
        mr: &mut K,
    ) -> impl Future<Output = Result<Deletion, ExternalError>> + Send;
}

/// A reconcile that failed (the reason is already in the `Synced` condition).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReconcileFailed(String);

impl From<StoreError> for ReconcileFailed {
    fn from(e: StoreError) -> Self {
        ReconcileFailed(error_chain(&e))
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

struct Ctx<E> {
    shared: Arc<Shared>,
    kind: E,
}

/// The grace period after a successful Create during which "does not exist" is not acted on.
const CREATE_GRACE: Duration = Duration::from_secs(30);

fn annotation_time<K: Managed>(mr: &K, key: &str) -> Option<jiff::Timestamp> {
    meta::annotation(&mr.meta().annotations, key).and_then(|v| v.parse().ok())
}

/// `external-create-pending` without a newer `-succeeded`/`-failed`.
pub fn create_pending_unresolved<K: Managed>(mr: &K) -> bool {
    let Some(pending) = annotation_time(mr, EXTERNAL_CREATE_PENDING) else {
        return false;
    };
    let newer = |key| annotation_time(mr, key).is_some_and(|t| t >= pending);
    !(newer(EXTERNAL_CREATE_SUCCEEDED) || newer(EXTERNAL_CREATE_FAILED))
}

async fn write_status<K: Managed>(
    api: &Api<K>,
    mr: &mut K,
    before: &Option<K::Status>,
) -> Result<(), StoreError> {
    if mr.status() != before.as_ref() {
        store::apply_status(api, mr).await?;
    }
    Ok(())
}

async fn fail<K: Managed>(
    shared: &Shared,
    api: &Api<K>,
    mr: &mut K,
    before: &Option<K::Status>,
    step: &str,
    err: ExternalError,
) -> Result<Action, ReconcileFailed> {
    let generation = mr.meta().generation;
    conditions::set(
        mr.conditions_mut(),
        conditions::reconcile_error(err.message.clone()),
        generation,
    );
    if let Some(ready) = err.ready.clone() {
        conditions::set(mr.conditions_mut(), *ready, generation);
    }
    write_status(api, mr, before).await?;
    let detail = err.detail();
    tracing::warn!(kind = %K::kind(&()), name = %mr.name_any(), step, error = %detail, "reconcile failed");
    let note = if err.internal {
        detail
    } else {
        err.message.clone()
    };
    shared.event(mr, EventType::Warning, step, note).await;
    match err.requeue_after {
        Some(d) => Ok(Action::requeue(d)),
        None => Err(ReconcileFailed(err.message)),
    }
}

/// Removes the finalizer after the external resource is gone (or orphaned).
async fn finish_deletion<K: Managed>(
    shared: &Shared,
    api: &Api<K>,
    mr: &mut K,
) -> Result<Action, ReconcileFailed> {
    if let Err(e) = connection::unpublish(&shared.client, mr).await {
        return Err(ReconcileFailed(error_chain(&e)));
    }
    if store::has_finalizer(mr) {
        store::apply_metadata(api, mr, false).await?;
    }
    if let Some(uid) = &mr.meta().uid {
        shared.usage.forget(uid);
    }
    Ok(Action::await_change())
}

async fn reconcile_once<K: Managed, E: ExternalKind<K>>(
    ctx: &Ctx<E>,
    name: &str,
) -> Result<Action, ReconcileFailed> {
    let shared = &*ctx.shared;
    let opts = &shared.options;
    let api: Api<K> = Api::all(shared.client.clone());
    let Some(mut mr) = store::get_fresh(&api, name).await? else {
        return Ok(Action::await_change());
    };
    let before = mr.status().cloned();
    let generation = mr.meta().generation;
    // 2. Management policies and pausing.
    let policies = match Policies::resolve(mr.resource_spec(), opts.enable_management_policies) {
        Ok(p) => p,
        Err(e) => {
            conditions::set(
                mr.conditions_mut(),
                conditions::reconcile_error(e.to_string()),
                generation,
            );
            write_status(&api, &mut mr, &before).await?;
            return Ok(Action::await_change());
        }
    };
    if meta::annotation(&mr.meta().annotations, meta::PAUSED) == Some("true") || policies.paused() {
        conditions::set(
            mr.conditions_mut(),
            conditions::reconcile_paused(),
            generation,
        );
        write_status(&api, &mut mr, &before).await?;
        return Ok(Action::await_change());
    }
    let deleting = mr.meta().deletion_timestamp.is_some();
    let cx = Cx {
        shared,
        api: &api,
        policies: &policies,
    };

    // 3. Deleted while the policies forbid deleting the external resource: orphan it.
    if deleting && !policies.should_delete() {
        return finish_deletion(shared, &api, &mut mr).await;
    }

    // 4. Connect (ProviderConfig, usage, client).
    let conn = match ctx.kind.connect(&cx, &mr).await {
        Ok(c) => c,
        Err(e) => return fail(shared, &api, &mut mr, &before, "CannotConnectToProvider", e).await,
    };
    let provider_config = mr.resource_spec().provider_config_ref.name.clone();
    if let Err(e) = shared
        .usage
        .track(&shared.client, &mr, &provider_config)
        .await
    {
        let e = ExternalError::internal(e);
        return fail(shared, &api, &mut mr, &before, "CannotConnectToProvider", e).await;
    }

    // 5. Finalizer.
    if !deleting && !store::has_finalizer(&mr) {
        store::apply_metadata(&api, &mut mr, true).await?;
    }

    // 6. Create-pending guard for non-idempotent creates.
    if !E::IDEMPOTENT_CREATE && !deleting && create_pending_unresolved(&mr) {
        match ctx.kind.recover_create(&conn, &cx, &mut mr).await {
            Ok(true) => {
                set_annotation(&mut mr, EXTERNAL_CREATE_SUCCEEDED, meta::now_rfc3339());
                if let Err(e) = cx.save_meta(&mut mr).await {
                    return fail(
                        shared,
                        &api,
                        &mut mr,
                        &before,
                        "CannotCreateExternalResource",
                        e,
                    )
                    .await;
                }
            }
            Ok(false) => {
                conditions::set(mr.conditions_mut(), conditions::creating(), generation);
                let e = ExternalError::user("cannot determine creation result - remove the crossplane.io/external-create-pending annotation if it is safe to proceed")
                    .requeue_after(opts.poll);
                return fail(
                    shared,
                    &api,
                    &mut mr,
                    &before,
                    "CannotCreateExternalResource",
                    e,
                )
                .await;
            }
            Err(e) => {
                return fail(
                    shared,
                    &api,
                    &mut mr,
                    &before,
                    "CannotCreateExternalResource",
                    e,
                )
                .await;
            }
        }
    }

    // 7. Observe.
    let obs = match ctx.kind.observe(&conn, &cx, &mut mr).await {
        Ok(o) => o,
        Err(e) => {
            return fail(
                shared,
                &api,
                &mut mr,
                &before,
                "CannotObserveExternalResource",
                e,
            )
            .await;
        }
    };

    // 8. Observe-only without an external resource.
    if policies.only_observe() && !obs.exists && !deleting {
        let e = ExternalError::user("external resource does not exist").requeue_after(opts.poll);
        return fail(
            shared,
            &api,
            &mut mr,
            &before,
            "CannotObserveExternalResource",
            e,
        )
        .await;
    }

    // 10. Deletion.
    if deleting {
        if !obs.exists {
            conditions::set(mr.conditions_mut(), conditions::deleting(), generation);
            let _ = write_status(&api, &mut mr, &before).await;
            return finish_deletion(shared, &api, &mut mr).await;
        }
        return match ctx.kind.delete(&conn, &cx, &mut mr).await {
            Ok(d) => {
                conditions::set(mr.conditions_mut(), conditions::deleting(), generation);
                conditions::set(
                    mr.conditions_mut(),
                    conditions::reconcile_success(),
                    generation,
                );
                write_status(&api, &mut mr, &before).await?;
                Ok(Action::requeue(
                    d.requeue_after.unwrap_or(Duration::from_secs(5)),
                ))
            }
            Err(e) => {
                if e.ready.is_none() {
                    conditions::set(mr.conditions_mut(), conditions::deleting(), generation);
                }
                fail(
                    shared,
                    &api,
                    &mut mr,
                    &before,
                    "CannotDeleteExternalResource",
                    e,
                )
                .await
            }
        };
    }

    // 11. Publish what Observe found.
    if let Some(details) = &obs.connection_details
        && let Err(e) = connection::publish(&shared.client, &mr, details).await
    {
        let e = ExternalError::with_source(e.to_string(), e);
        return fail(
            shared,
            &api,
            &mut mr,
            &before,
            "CannotPublishConnectionDetails",
            e,
        )
        .await;
    }

    // 9 + 12. Create.
    if !obs.exists {
        if annotation_time(&mr, EXTERNAL_CREATE_SUCCEEDED)
            .is_some_and(|t| jiff::Timestamp::now().duration_since(t).unsigned_abs() < CREATE_GRACE)
            && !create_pending_unresolved(&mr)
            && !E::IDEMPOTENT_CREATE
        {
            write_status(&api, &mut mr, &before).await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        if !policies.should_create() {
            let e = ExternalError::user(
                "external resource does not exist and the management policies do not allow creating it",
            )
            .requeue_after(opts.poll);
            return fail(
                shared,
                &api,
                &mut mr,
                &before,
                "CannotCreateExternalResource",
                e,
            )
            .await;
        }
        set_annotation(&mut mr, EXTERNAL_CREATE_PENDING, meta::now_rfc3339());
        if let Err(e) = cx.save_meta(&mut mr).await {
            return fail(
                shared,
                &api,
                &mut mr,
                &before,
                "CannotCreateExternalResource",
                e,
            )
            .await;
        }
        return match ctx.kind.create(&conn, &cx, &mut mr).await {
            Ok(c) => {
                set_annotation(&mut mr, EXTERNAL_CREATE_SUCCEEDED, meta::now_rfc3339());
                if let Err(e) = cx.save_meta(&mut mr).await {
                    return fail(
                        shared,
                        &api,
                        &mut mr,
                        &before,
                        "CannotCreateExternalResource",
                        e,
                    )
                    .await;
                }
                if let Some(details) = &c.connection_details
                    && let Err(e) = connection::publish(&shared.client, &mr, details).await
                {
                    let e = ExternalError::with_source(e.to_string(), e);
                    return fail(
                        shared,
                        &api,
                        &mut mr,
                        &before,
                        "CannotPublishConnectionDetails",
                        e,
                    )
                    .await;
                }
                if conditions::get(mr.conditions(), READY).is_none() {
                    conditions::set(mr.conditions_mut(), conditions::creating(), generation);
                }
                conditions::set(
                    mr.conditions_mut(),
                    conditions::reconcile_success(),
                    generation,
                );
                mr.set_observed_generation(generation);
                write_status(&api, &mut mr, &before).await?;
                shared
                    .event(
                        &mr,
                        kube::runtime::events::EventType::Normal,
                        "CreatedExternalResource",
                        "Successfully requested creation of external resource".into(),
                    )
                    .await;
                Ok(Action::requeue(
                    c.requeue_after.unwrap_or(Duration::from_secs(1)),
                ))
            }
            Err(e) => {
                set_annotation(&mut mr, EXTERNAL_CREATE_FAILED, meta::now_rfc3339());
                let _ = cx.save_meta(&mut mr).await;
                fail(
                    shared,
                    &api,
                    &mut mr,
                    &before,
                    "CannotCreateExternalResource",
                    e,
                )
                .await
            }
        };
    }

    // 13. Update.
    let mut requeue = obs.requeue_after;
    if !obs.up_to_date && policies.should_update() {
        match ctx.kind.update(&conn, &cx, &mut mr).await {
            Ok(c) => {
                if let Some(details) = &c.connection_details
                    && let Err(e) = connection::publish(&shared.client, &mr, details).await
                {
                    let e = ExternalError::with_source(e.to_string(), e);
                    return fail(
                        shared,
                        &api,
                        &mut mr,
                        &before,
                        "CannotPublishConnectionDetails",
                        e,
                    )
                    .await;
                }
                requeue = c.requeue_after.or(requeue);
            }
            Err(e) => {
                return fail(
                    shared,
                    &api,
                    &mut mr,
                    &before,
                    "CannotUpdateExternalResource",
                    e,
                )
                .await;
            }
        }
    }

    // 14. Success.
    conditions::set(
        mr.conditions_mut(),
        conditions::reconcile_success(),
        generation,
    );
    mr.set_observed_generation(generation);
    write_status(&api, &mut mr, &before).await?;
    Ok(Action::requeue(
        requeue.unwrap_or_else(|| jitter(opts.poll)),
    ))
}

async fn reconcile<K: Managed, E: ExternalKind<K>>(
    obj: Arc<K>,
    ctx: Arc<Ctx<E>>,
) -> Result<Action, ReconcileFailed> {
    let started = Instant::now();
    let name = obj.name_any();
    let result = match tokio::time::timeout(
        ctx.shared.options.reconcile_timeout,
        reconcile_once::<K, E>(&ctx, &name),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(ReconcileFailed(format!(
            "reconcile of {} {name} timed out",
            K::kind(&())
        ))),
    };
    ctx.shared
        .metrics
        .reconciled(E::CONTROLLER, started.elapsed(), result.is_err());
    if result.is_ok() {
        ctx.shared
            .reset_backoff(&obj.meta().uid.clone().unwrap_or(name));
    }
    result
}

fn error_policy<K: Managed, E: ExternalKind<K>>(
    obj: Arc<K>,
    err: &ReconcileFailed,
    ctx: Arc<Ctx<E>>,
) -> Action {
    let key = obj.meta().uid.clone().unwrap_or_else(|| obj.name_any());
    let d = ctx.shared.backoff(&key);
    tracing::debug!(kind = %K::kind(&()), name = %obj.name_any(), error = %err, retry_in = ?d, "backing off");
    Action::requeue(d)
}

/// Changes that trigger a reconcile: the spec (generation), deletion, labels and annotations
/// (but not the create-pending/succeeded/failed and id bookkeeping). Status changes do not (the reconciler requeues itself while operations run).
fn trigger_hash<K: Managed>(obj: &K) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let m = obj.meta();
    m.generation.hash(&mut h);
    m.deletion_timestamp.is_some().hash(&mut h);
    m.labels.hash(&mut h);
    // Annotations, except the bookkeeping ones the reconciler writes itself (the
    // external-name stays: users set it to import).
    for (k, v) in m.annotations.iter().flatten() {
        if k == meta::EXTERNAL_NAME || !meta::OWNED_ANNOTATIONS.contains(&k.as_str()) {
            (k, v).hash(&mut h);
        }
    }
    Some(h.finish())
}

/// Runs the controller of kind `K` until `shutdown` completes.
pub async fn run<K, E>(
    shared: Arc<Shared>,
    kind: E,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    K: Managed,
    E: ExternalKind<K>,
{
    let api: Api<K> = Api::all(shared.client.clone());
    let mut wc = watcher::Config::default();
    if let Some(sel) = &shared.options.label_selector {
        wc = wc.labels(sel);
    }
    let (reader, writer) = reflector::store();
    let stream = watcher(api, wc)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger_hash::<K>, PredicateConfig::default());
    let sync = shared.options.sync;
    let resync = futures::stream::unfold((), move |_| async move {
        tokio::time::sleep(sync).await;
        Some(((), ()))
    });
    let config = ControllerConfig::default().concurrency(shared.options.max_reconcile_rate);
    let ctx = Arc::new(Ctx { shared, kind });
    Controller::for_stream(stream, reader)
        .with_config(config)
        .reconcile_all_on(resync)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K, E>, error_policy::<K, E>, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

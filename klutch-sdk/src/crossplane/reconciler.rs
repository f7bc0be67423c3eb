//! The generic managed reconciler: crossplane-runtime's algorithm for any kind that
//! implements [`ExternalClient`]. A kind supplies Connect, Observe, Create, Update and
//! Delete; this module does everything else — management and deletion policies, the pause
//! annotation, the finalizer, ProviderConfigUsage tracking, the create-pending guard for
//! non-idempotent creates, connection Secrets, the `Ready`/`Synced` conditions, Events,
//! requeues and exponential backoff.
//!
//! Every reconcile reads the object from the API server (not from the watch cache), so a
//! write-ahead id is never missed because a cache lags.

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::jiff;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::EventType;
use kube::runtime::{PredicateConfig, WatchStreamExt as _, reflector, watcher};

use super::conditions::{self, READY};
use super::connection;
use super::error::ExternalError;
use super::managed::Managed;
use super::meta::{
    self, EXTERNAL_CREATE_FAILED, EXTERNAL_CREATE_PENDING, EXTERNAL_CREATE_SUCCEEDED,
};
use super::policies::Policies;
use super::provider::{Provider, jitter};
use super::settings::{Options, Settings};
use super::store::{self, StoreError};
use crate::runtime::report::error_chain;

/// What Observe found.
#[derive(Debug, Default)]
pub struct Observation {
    /// The external resource exists.
    pub exists: bool,
    /// It matches the spec (nothing to update).
    pub up_to_date: bool,
    /// Connection details to publish.
    pub connection_details: Option<BTreeMap<String, String>>,
    /// Poll again after this (a running operation); default [`Options::poll`].
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

/// The reconcile context handed to a kind: the provider, the API of its objects and the
/// effective management policies, with write-ahead helpers.
pub struct Cx<'a, K: Managed, S = ()> {
    provider: &'a Provider<S>,
    api: &'a Api<K>,
    policies: &'a Policies,
}

impl<K: Managed, S> Cx<'_, K, S> {
    /// Persists the status now (write-ahead).
    pub async fn save_status(&self, mr: &K) -> Result<(), ExternalError> {
        store::apply_status(self.provider.settings(), self.api, mr)
            .await
            .map_err(ExternalError::internal)
    }

    /// Persists the owned annotations now (write-ahead), keeping the finalizer.
    pub async fn save_meta(&self, mr: &mut K) -> Result<(), ExternalError> {
        let keep = store::has_finalizer(mr);
        store::apply_metadata(self.provider.settings(), self.api, mr, keep)
            .await
            .map_err(ExternalError::internal)
    }

    /// The provider.
    pub fn provider(&self) -> &Provider<S> {
        self.provider
    }

    /// The Kubernetes client.
    pub fn client(&self) -> &kube::Client {
        self.provider.client()
    }

    /// The provider's own state.
    pub fn state(&self) -> &S {
        self.provider.state()
    }

    /// The controller options.
    pub fn options(&self) -> &Options {
        self.provider.options()
    }

    /// The provider's identity.
    pub fn settings(&self) -> &Settings {
        self.provider.settings()
    }

    /// The API of the kind.
    pub fn api(&self) -> &Api<K> {
        self.api
    }

    /// The effective management policies of the object being reconciled.
    pub fn policies(&self) -> &Policies {
        self.policies
    }
}

/// One managed-resource kind's external operations: crossplane-runtime's
/// `ExternalConnecter` (`connect`) and `ExternalClient` (the rest) in one trait. `S` is the
/// provider's state ([`Provider::state`]), reachable through [`Cx::state`].
pub trait ExternalClient<K: Managed, S = ()>: Send + Sync + 'static {
    /// The controller's name (metrics, logs).
    const CONTROLLER: &'static str;
    /// Whether Create may be repeated safely after a lost answer. When false, the
    /// create-pending guard applies (Create is not called again while
    /// `crossplane.io/external-create-pending` is unresolved) and
    /// [`ExternalClient::recover_create`] is asked first.
    const IDEMPOTENT_CREATE: bool = true;
    /// A connected client.
    type Conn: Send + Sync;

    /// Resolves the ProviderConfig and builds a client. The reconciler records the
    /// ProviderConfigUsage afterwards.
    fn connect(
        &self,
        cx: &Cx<'_, K, S>,
        mr: &K,
    ) -> impl Future<Output = Result<Self::Conn, ExternalError>> + Send;

    /// Tries to find the result of a Create whose answer was lost; `Ok(true)` when the
    /// external id was recovered (and persisted).
    fn recover_create(
        &self,
        _conn: &Self::Conn,
        _cx: &Cx<'_, K, S>,
        _mr: &mut K,
    ) -> impl Future<Output = Result<bool, ExternalError>> + Send {
        async { Ok(false) }
    }

    /// Reads the external resource, fills `status.atProvider` and the `Ready` condition.
    fn observe(
        &self,
        conn: &Self::Conn,
        cx: &Cx<'_, K, S>,
        mr: &mut K,
    ) -> impl Future<Output = Result<Observation, ExternalError>> + Send;

    /// Creates the external resource.
    fn create(
        &self,
        conn: &Self::Conn,
        cx: &Cx<'_, K, S>,
        mr: &mut K,
    ) -> impl Future<Output = Result<Creation, ExternalError>> + Send;

    /// Brings the external resource in line with the spec.
    fn update(
        &self,
        conn: &Self::Conn,
        cx: &Cx<'_, K, S>,
        mr: &mut K,
    ) -> impl Future<Output = Result<Creation, ExternalError>> + Send;

    /// Deletes the external resource.
    fn delete(
        &self,
        conn: &Self::Conn,
        cx: &Cx<'_, K, S>,
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

struct Ctx<E, S> {
    provider: Arc<Provider<S>>,
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
    settings: &Settings,
    api: &Api<K>,
    mr: &mut K,
    before: &Option<K::Status>,
) -> Result<(), StoreError> {
    if mr.status() != before.as_ref() {
        store::apply_status(settings, api, mr).await?;
    }
    Ok(())
}

async fn fail<K: Managed, S>(
    provider: &Provider<S>,
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
    write_status(provider.settings(), api, mr, before).await?;
    let detail = err.detail();
    tracing::warn!(kind = %K::kind(&()), name = %mr.name_any(), step, error = %detail, "reconcile failed");
    let note = if err.internal {
        detail
    } else {
        err.message.clone()
    };
    provider.event(mr, EventType::Warning, step, note).await;
    match err.requeue_after {
        Some(d) => Ok(Action::requeue(d)),
        None => Err(ReconcileFailed(err.message)),
    }
}

/// Removes the finalizer after the external resource is gone (or orphaned).
async fn finish_deletion<K: Managed, S>(
    provider: &Provider<S>,
    api: &Api<K>,
    mr: &mut K,
) -> Result<Action, ReconcileFailed> {
    if let Err(e) = connection::unpublish(provider.client(), mr).await {
        return Err(ReconcileFailed(error_chain(&e)));
    }
    if store::has_finalizer(mr) {
        store::apply_metadata(provider.settings(), api, mr, false).await?;
    }
    if let Some(uid) = &mr.meta().uid {
        provider.usage().forget(uid);
    }
    Ok(Action::await_change())
}

async fn reconcile_once<K: Managed, S: Send + Sync + 'static, E: ExternalClient<K, S>>(
    ctx: &Ctx<E, S>,
    name: &str,
) -> Result<Action, ReconcileFailed> {
    let provider = &*ctx.provider;
    let opts = provider.options();
    let settings = provider.settings();
    let api: Api<K> = Api::all(provider.client().clone());
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
            write_status(settings, &api, &mut mr, &before).await?;
            return Ok(Action::await_change());
        }
    };
    if meta::annotation(&mr.meta().annotations, meta::PAUSED) == Some("true") || policies.paused() {
        conditions::set(
            mr.conditions_mut(),
            conditions::reconcile_paused(),
            generation,
        );
        write_status(settings, &api, &mut mr, &before).await?;
        return Ok(Action::await_change());
    }
    let deleting = mr.meta().deletion_timestamp.is_some();
    let cx = Cx {
        provider,
        api: &api,
        policies: &policies,
    };

    // 3. Deleted while the policies forbid deleting the external resource: orphan it.
    if deleting && !policies.should_delete() {
        return finish_deletion(provider, &api, &mut mr).await;
    }

    // 4. Connect (ProviderConfig, usage, client).
    let conn = match ctx.kind.connect(&cx, &mr).await {
        Ok(c) => c,
        Err(e) => {
            return fail(
                provider,
                &api,
                &mut mr,
                &before,
                "CannotConnectToProvider",
                e,
            )
            .await;
        }
    };
    let provider_config = mr.provider_config_name().to_owned();
    if let Err(e) = provider
        .usage()
        .track(provider.client(), settings, &mr, &provider_config)
        .await
    {
        let e = ExternalError::internal(e);
        return fail(
            provider,
            &api,
            &mut mr,
            &before,
            "CannotConnectToProvider",
            e,
        )
        .await;
    }

    // 5. Finalizer.
    if !deleting && !store::has_finalizer(&mr) {
        store::apply_metadata(settings, &api, &mut mr, true).await?;
    }

    // 6. Create-pending guard for non-idempotent creates.
    if !E::IDEMPOTENT_CREATE && !deleting && create_pending_unresolved(&mr) {
        match ctx.kind.recover_create(&conn, &cx, &mut mr).await {
            Ok(true) => {
                mr.set_annotation(EXTERNAL_CREATE_SUCCEEDED, meta::now_rfc3339());
                if let Err(e) = cx.save_meta(&mut mr).await {
                    return fail(
                        provider,
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
                    provider,
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
                    provider,
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
                provider,
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
            provider,
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
            let _ = write_status(settings, &api, &mut mr, &before).await;
            return finish_deletion(provider, &api, &mut mr).await;
        }
        return match ctx.kind.delete(&conn, &cx, &mut mr).await {
            Ok(d) => {
                conditions::set(mr.conditions_mut(), conditions::deleting(), generation);
                conditions::set(
                    mr.conditions_mut(),
                    conditions::reconcile_success(),
                    generation,
                );
                write_status(settings, &api, &mut mr, &before).await?;
                Ok(Action::requeue(
                    d.requeue_after.unwrap_or(Duration::from_secs(5)),
                ))
            }
            Err(e) => {
                if e.ready.is_none() {
                    conditions::set(mr.conditions_mut(), conditions::deleting(), generation);
                }
                fail(
                    provider,
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
        && let Err(e) =
            connection::publish(provider.client(), &settings.field_manager, &mr, details).await
    {
        let e = ExternalError::with_source(e.to_string(), e);
        return fail(
            provider,
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
            write_status(settings, &api, &mut mr, &before).await?;
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        if !policies.should_create() {
            let e = ExternalError::user(
                "external resource does not exist and the management policies do not allow creating it",
            )
            .requeue_after(opts.poll);
            return fail(
                provider,
                &api,
                &mut mr,
                &before,
                "CannotCreateExternalResource",
                e,
            )
            .await;
        }
        mr.set_annotation(EXTERNAL_CREATE_PENDING, meta::now_rfc3339());
        if let Err(e) = cx.save_meta(&mut mr).await {
            return fail(
                provider,
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
                mr.set_annotation(EXTERNAL_CREATE_SUCCEEDED, meta::now_rfc3339());
                if let Err(e) = cx.save_meta(&mut mr).await {
                    return fail(
                        provider,
                        &api,
                        &mut mr,
                        &before,
                        "CannotCreateExternalResource",
                        e,
                    )
                    .await;
                }
                if let Some(details) = &c.connection_details
                    && let Err(e) = connection::publish(
                        provider.client(),
                        &settings.field_manager,
                        &mr,
                        details,
                    )
                    .await
                {
                    let e = ExternalError::with_source(e.to_string(), e);
                    return fail(
                        provider,
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
                write_status(settings, &api, &mut mr, &before).await?;
                provider
                    .event(
                        &mr,
                        EventType::Normal,
                        "CreatedExternalResource",
                        "Successfully requested creation of external resource".into(),
                    )
                    .await;
                Ok(Action::requeue(
                    c.requeue_after.unwrap_or(Duration::from_secs(1)),
                ))
            }
            Err(e) => {
                mr.set_annotation(EXTERNAL_CREATE_FAILED, meta::now_rfc3339());
                let _ = cx.save_meta(&mut mr).await;
                fail(
                    provider,
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
                    && let Err(e) = connection::publish(
                        provider.client(),
                        &settings.field_manager,
                        &mr,
                        details,
                    )
                    .await
                {
                    let e = ExternalError::with_source(e.to_string(), e);
                    return fail(
                        provider,
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
                    provider,
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
    write_status(settings, &api, &mut mr, &before).await?;
    Ok(Action::requeue(
        requeue.unwrap_or_else(|| jitter(opts.poll)),
    ))
}

async fn reconcile<K: Managed, S: Send + Sync + 'static, E: ExternalClient<K, S>>(
    obj: Arc<K>,
    ctx: Arc<Ctx<E, S>>,
) -> Result<Action, ReconcileFailed> {
    let started = Instant::now();
    let name = obj.name_any();
    let result = match tokio::time::timeout(
        ctx.provider.options().reconcile_timeout,
        reconcile_once::<K, S, E>(&ctx, &name),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(ReconcileFailed(format!(
            "reconcile of {} {name} timed out",
            K::kind(&())
        ))),
    };
    if let Some(m) = ctx.provider.metrics() {
        m.reconciled(E::CONTROLLER, started.elapsed(), result.is_err());
    }
    if result.is_ok() {
        ctx.provider
            .reset_backoff(&obj.meta().uid.clone().unwrap_or(name));
    }
    result
}

fn error_policy<K: Managed, S, E>(
    obj: Arc<K>,
    err: &ReconcileFailed,
    ctx: Arc<Ctx<E, S>>,
) -> Action {
    let key = obj.meta().uid.clone().unwrap_or_else(|| obj.name_any());
    let d = ctx.provider.backoff(&key);
    tracing::debug!(kind = %K::kind(&()), name = %obj.name_any(), error = %err, retry_in = ?d, "backing off");
    Action::requeue(d)
}

/// Changes that trigger a reconcile: the spec (generation), deletion, labels and annotations
/// (but not the create-pending/succeeded/failed and id bookkeeping). Status changes do not (the reconciler requeues itself while operations run).
fn trigger_hash<K: Managed>(settings: &Settings, obj: &K) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let m = obj.meta();
    m.generation.hash(&mut h);
    m.deletion_timestamp.is_some().hash(&mut h);
    m.labels.hash(&mut h);
    // Annotations, except the bookkeeping ones the reconciler writes itself (the
    // external-name stays: users set it to import).
    for (k, v) in m.annotations.iter().flatten() {
        if k == meta::EXTERNAL_NAME || !settings.owns_annotation(k) {
            (k, v).hash(&mut h);
        }
    }
    Some(h.finish())
}

/// Runs the controller of kind `K`, whose external operations `client` implements, until
/// `shutdown` completes (in-flight reconciles finish first).
pub async fn run<K, S, E>(
    provider: Arc<Provider<S>>,
    client: E,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    K: Managed,
    S: Send + Sync + 'static,
    E: ExternalClient<K, S>,
{
    let options = provider.options().clone();
    let api: Api<K> = Api::all(provider.client().clone());
    let mut wc = watcher::Config::default();
    if let Some(sel) = &options.label_selector {
        wc = wc.labels(sel);
    }
    let settings = provider.settings().clone();
    let (reader, writer) = reflector::store();
    let stream = watcher(api, wc)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            move |obj: &K| trigger_hash(&settings, obj),
            PredicateConfig::default(),
        );
    let sync = options.sync;
    let resync = futures::stream::unfold((), move |_| async move {
        tokio::time::sleep(sync).await;
        Some(((), ()))
    });
    let config = ControllerConfig::default().concurrency(options.max_reconcile_rate);
    let ctx = Arc::new(Ctx {
        provider,
        kind: client,
    });
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let shutdown = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    };
    Controller::for_stream(stream, reader)
        .with_config(config)
        .reconcile_all_on(resync)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K, S, E>, error_policy::<K, S, E>, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

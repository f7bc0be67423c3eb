//! The provider-side controllers of a backend (spec §4.5), each with one worker:
//!
//! - [`cluster_binding`]: tenant RBAC as desired state and `Healthy` from heartbeats;
//! - [`export_request`]: APIServiceExportRequest → APIServiceExport, terminal `Failed`, clean-up;
//! - [`export_refresh`]: exports follow their CRDs, and vanish with them;
//! - [`service_namespace`]: APIServiceNamespace → provider namespace and RoleBinding.
//!
//! Every controller reads its objects through [`lenient::Lenient`]: an object its type cannot
//! decode is skipped and reported on (a Warning event), never allowed to stop a list or watch.
//!
//! [`run`] runs them all; [`run_under_lease`] runs them only while this replica holds the Lease
//! `klutch-bind-backend`, so several replicas can serve HTTP while one reconciles.

pub mod cluster_binding;
pub mod export_refresh;
pub mod export_request;
pub mod lenient;
pub mod service_namespace;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;

use super::binding_space::FIELD_MANAGER;
use super::contract::BindingBackend;
use crate::api::wellknown::BACKEND_LEASE;
use crate::runtime::lease::LeaderElection;

/// What a reconcile failed on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An API call failed.
    #[error("{what}")]
    Kube {
        /// The operation.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The backend could not answer.
    #[error("backend: {what}")]
    Backend {
        /// The operation.
        what: String,
        /// The backend's error.
        #[source]
        source: super::contract::ExportSpecError,
    },
    /// A namespace the backend would use belongs to something else.
    #[error("namespace {namespace} exists and is not ours ({annotation:?})")]
    Foreign {
        /// The namespace.
        namespace: String,
        /// Its back-reference annotation.
        annotation: Option<String>,
    },
    /// Leader election failed.
    #[error("leader election")]
    Lease(#[source] crate::runtime::lease::Error),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

/// The export-request timings of spec §4.5.2 (tests shorten them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A request still failing this long after creation fails for good (default 1 min).
    pub fail_after: Duration,
    /// Requests of any phase are deleted this long after creation (default 10 min).
    pub collect_after: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            fail_after: export_request::FAIL_AFTER,
            collect_after: export_request::COLLECT_AFTER,
        }
    }
}

/// Shared state of the controllers.
pub struct Context<B> {
    /// Provider client.
    pub client: Client,
    /// The backend.
    pub backend: Arc<B>,
    /// Export-request timings.
    pub timing: Timing,
    /// Records events on objects (e.g. undecodable ones).
    pub recorder: kube::runtime::events::Recorder,
}

pub(crate) fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

pub(crate) fn error_policy<K, B>(_obj: Arc<K>, err: &Error, _ctx: Arc<Context<B>>) -> Action {
    tracing::warn!(error = %crate::runtime::report::error_chain(err), "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

/// Applies the static ClusterRole `klutch-binder` (spec §4.1: before the controllers start).
pub async fn apply_binder_cluster_role(client: &Client) -> Result<()> {
    let role = super::rbac::binder_cluster_role();
    Api::<ClusterRole>::all(client.clone())
        .patch(
            crate::api::wellknown::BINDER_NAME,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&role),
        )
        .await
        .map_err(kube_err("apply ClusterRole klutch-binder"))?;
    Ok(())
}

/// Runs every controller until the future is dropped.
pub async fn run<B: BindingBackend>(client: Client, backend: Arc<B>) -> Result<()> {
    run_with(client, backend, Timing::default()).await
}

/// [`run`] with other export-request timings.
pub async fn run_with<B: BindingBackend>(
    client: Client,
    backend: Arc<B>,
    timing: Timing,
) -> Result<()> {
    apply_binder_cluster_role(&client).await?;
    let ctx = Arc::new(Context {
        recorder: lenient::recorder(client.clone()),
        client,
        backend,
        timing,
    });
    tokio::join!(
        cluster_binding::run(ctx.clone()),
        export_request::run(ctx.clone()),
        export_refresh::run(ctx.clone()),
        service_namespace::run(ctx.clone()),
    );
    Ok(())
}

/// Runs the controllers while this replica holds Lease `klutch-bind-backend` in `namespace`
/// (identity `identity`, e.g. the pod name), stopping them as soon as the Lease is lost and
/// campaigning again. Returns only on a leader-election error.
pub async fn run_under_lease<B: BindingBackend>(
    client: Client,
    backend: Arc<B>,
    namespace: &str,
    identity: &str,
) -> Result<()> {
    run_under_lease_with(client, backend, namespace, identity, Timing::default()).await
}

/// The backend's election: Lease [`BACKEND_LEASE`], duration 15 s, renewed 5 s before expiry.
pub fn election(client: Client, namespace: &str, identity: &str) -> LeaderElection {
    LeaderElection::new(client, namespace, BACKEND_LEASE)
        .with_identity(identity)
        .with_duration(Duration::from_secs(15))
        .with_grace(Duration::from_secs(5))
        .with_renewal_check(None)
}

/// [`run_under_lease`] with other export-request timings.
pub async fn run_under_lease_with<B: BindingBackend>(
    client: Client,
    backend: Arc<B>,
    namespace: &str,
    identity: &str,
    timing: Timing,
) -> Result<()> {
    election(client.clone(), namespace, identity)
        .run_forever(std::future::pending::<()>(), |stop| {
            let (client, backend) = (client.clone(), backend.clone());
            async move {
                // In their own task, as the HTTP server usually runs beside them.
                let mut controllers = AbortOnDrop(tokio::spawn(run_with(client, backend, timing)));
                tokio::select! {
                    r = &mut controllers.0 => {
                        if let Ok(Err(e)) = r {
                            tracing::error!(error = %crate::runtime::report::error_chain(&e), "controllers stopped");
                        }
                        // Keep the Lease, idle, until it is lost.
                        stop.cancelled().await;
                    }
                    () = stop.cancelled() => {}
                }
            }
        })
        .await
        .map_err(Error::Lease)
}

/// A task aborted when dropped, so stopped work does not run on.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

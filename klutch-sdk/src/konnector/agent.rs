//! [`Konnector`], the engine as one value: built from the app-cluster client and the variant's
//! choices, it installs the APIServiceBinding CRD and runs the controllers.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use tokio_util::sync::CancellationToken;

use super::connection::Shared;
use super::events::EventSink;
use super::manager;
use super::metrics::{Metrics, Observer};
use super::observe::SyncObserver;
use super::settings::{ExportPlacement, PlacementPolicy, Settings};

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Installing the APIServiceBinding CRD failed.
    #[error("install the APIServiceBinding CRD")]
    InstallCrd(#[source] kube::Error),
    /// The CRD did not become Established.
    #[error("the APIServiceBinding CRD did not become Established within 60 s")]
    CrdNotEstablished,
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The konnector engine for one app (consumer) cluster. See the [module docs](super) for what it
/// does and an example.
pub struct Konnector {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Konnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Konnector")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Konnector`]; from [`Konnector::builder`].
#[must_use]
pub struct KonnectorBuilder {
    consumer: kube::Client,
    settings: Settings,
    metrics: Option<Arc<Metrics>>,
    observers: Vec<Arc<dyn SyncObserver>>,
    placement: Arc<dyn PlacementPolicy>,
    events: Option<String>,
}

impl std::fmt::Debug for KonnectorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KonnectorBuilder")
            .field("settings", &self.settings)
            .field("observers", &self.observers.len())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Konnector {
    /// A builder for an engine working in the app cluster `consumer`.
    pub fn builder(consumer: kube::Client) -> KonnectorBuilder {
        KonnectorBuilder {
            consumer,
            settings: Settings::default(),
            metrics: None,
            observers: Vec::new(),
            placement: Arc::new(ExportPlacement),
            events: Some("konnector".into()),
        }
    }

    /// The engine's metrics (for a `/metrics` endpoint).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Creates or updates the APIServiceBinding CRD in the app cluster (server-side apply, field
    /// manager `konnector`) and waits (at most 60 s) until it is Established. Call it once before
    /// [`run`](Self::run).
    pub async fn install_crd(&self) -> Result<()> {
        let crd = crate::api::crds()
            .into_iter()
            .find(|c| c.spec.names.kind == "APIServiceBinding")
            .unwrap_or_else(crate::api::APIServiceBinding::crd);
        let name = crd.metadata.name.clone().unwrap_or_default();
        let api: Api<CustomResourceDefinition> = Api::all(self.shared.consumer.clone());
        let mut body = serde_json::to_value(&crd).expect("a CRD serialises");
        body["apiVersion"] = "apiextensions.k8s.io/v1".into();
        body["kind"] = "CustomResourceDefinition".into();
        api.patch(
            &name,
            &PatchParams::apply("konnector").force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(Error::InstallCrd)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let crd = api.get(&name).await.map_err(Error::InstallCrd)?;
            let established = crd.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::CrdNotEstablished);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs the controllers until `shutdown` resolves, then stops every provider connection and
    /// waits for them. With several replicas, run it only while holding a leader Lease.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let cancel = CancellationToken::new();
        let controllers = manager::run(self.shared, cancel.clone());
        futures::pin_mut!(controllers);
        tokio::select! {
            () = &mut controllers => return,
            () = shutdown => {}
        }
        cancel.cancel();
        controllers.await;
    }
}

impl KonnectorBuilder {
    /// Timings and the reported version (default [`Settings::default`]).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Records into `metrics` instead of a registry of its own, e.g. one the app-cluster
    /// client already counts requests into.
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Also reports every sync outcome (hop latencies, failures) to `observer`, after the
    /// engine's own metrics and Events. May be called several times.
    pub fn observer(mut self, observer: Arc<dyn SyncObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Places provider copies by `policy` instead of by what each export says
    /// ([`ExportPlacement`]).
    pub fn placement(mut self, policy: impl PlacementPolicy) -> Self {
        self.placement = Arc::new(policy);
        self
    }

    /// Posts sync failures as Warning Events on consumer objects with reporter `konnector` and
    /// this instance name (e.g. the pod name; default `konnector`), or not at all with `None`.
    pub fn events(mut self, instance: Option<&str>) -> Self {
        self.events = instance.map(str::to_owned);
        self
    }

    /// The engine.
    pub fn build(self) -> Konnector {
        let metrics = self.metrics.unwrap_or_default();
        let observer = Observer {
            metrics: metrics.clone(),
            events: self
                .events
                .map(|instance| EventSink::new(self.consumer.clone(), &instance)),
            extra: self.observers,
        };
        Konnector {
            shared: Arc::new(Shared {
                consumer: self.consumer,
                metrics,
                observer: Arc::new(observer),
                placement: self.placement,
                settings: self.settings,
            }),
        }
    }
}

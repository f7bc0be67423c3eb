//! The konnector engine (cargo feature `konnector`): the sync agent of an app (consumer) cluster,
//! as a library, so that a variant of the konnector is a small binary on top of it.
//!
//! For every APIServiceBinding in the app cluster the engine connects to the provider named by
//! the binding's kubeconfig Secret (one connection per distinct kubeconfig), creates the bound
//! CRD, copies the spec of bound objects up to the provider and their status back down, mirrors
//! the Secrets and ConfigMaps the binding's accepted permission claims select, adopts objects the
//! provider creates, rotates the kubeconfig when the provider does, reports a heartbeat and its
//! version on the provider's ClusterBinding, and releases everything when a binding goes, keeping
//! the CRD, the app's objects and the provider copies (deleting the CRD only when it carries
//! [`DELETE_ON_UNBIND_ANNOTATION`]). The decisions it executes are the pure ones of
//! [`crate::sync`]; docs/konnector.md describes conditions, metrics and permissions.
//!
//! The parts:
//!
//! - [`Konnector`] (from [`Konnector::builder`]): the whole engine. Extension points:
//!   [`settings`](KonnectorBuilder::settings) (timings, reported version),
//!   [`placement`](KonnectorBuilder::placement) (where provider copies go, a
//!   [`PlacementPolicy`]), [`observer`](KonnectorBuilder::observer) (every sync outcome, e.g.
//!   for metrics of your own), [`events`](KonnectorBuilder::events) (Kubernetes Events on
//!   consumer objects) and [`metrics`](KonnectorBuilder::metrics) (the Prometheus registry).
//! - [`ResourceSyncer`] and [`ClaimSyncer`]: the two syncers the engine runs per binding, usable
//!   on their own by an agent with other ideas about bindings.
//! - [`observe`]: the [`SyncObserver`] hooks both syncers report to.
//!
//! Leader election, the `/healthz` server, logging and signals are the binary's (see
//! `bins/konnector`): run the engine only while holding a leader Lease when several replicas
//! share an app cluster.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use klutch_sdk::konnector::observe::{Hop, SyncObserver};
//! use klutch_sdk::konnector::{Konnector, Settings};
//!
//! /// Logs every spec that reached the provider.
//! struct LogSpecUp;
//!
//! impl SyncObserver for LogSpecUp {
//!     fn synced(&self, hop: Hop, took: Duration) {
//!         if hop == Hop::SpecUp {
//!             eprintln!("spec up in {took:?}");
//!         }
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let app_cluster = kube::Client::try_default().await?;
//! let konnector = Konnector::builder(app_cluster)
//!     .settings(Settings::default().heartbeat_period(Duration::from_secs(60)))
//!     .observer(Arc::new(LogSpecUp))
//!     .events(Some("my-konnector-0"))
//!     .build();
//! konnector.install_crd().await?;
//! konnector.run(async { tokio::signal::ctrl_c().await.ok(); }).await;
//! # Ok(()) }
//! ```

mod agent;
pub mod claimed;
pub mod client;
mod connection;
mod context;
mod events;
mod heartbeat;
mod kubeconfig;
mod manager;
pub mod metrics;
pub mod observe;
mod provider;
mod settings;
mod status;
pub mod syncer;
mod unbind;

pub use agent::{Error, Konnector, KonnectorBuilder, Result};
pub use claimed::ClaimSyncer;
pub use metrics::Metrics;
pub use observe::SyncObserver;
pub use settings::{ExportPlacement, PlacementPolicy, Settings};
pub use syncer::ResourceSyncer;
pub use unbind::{DELETE_ON_UNBIND_ANNOTATION, KUBECONFIG_SECRET_ANNOTATION};

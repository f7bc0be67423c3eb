//! What a konnector variant sets: timings and the reported version ([`Settings`]), and where the
//! provider copies of a bound resource go ([`PlacementPolicy`]).

use std::time::Duration;

use crate::api::APIServiceExport;
use crate::sync::placement::Placement;

/// Timings and the version the engine reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// How long a provider connection may take to list the provider side before its bindings
    /// report `InformersSynced=False` (default 150 s).
    pub informer_sync_timeout: Duration,
    /// Interval of the ClusterBinding heartbeat (default 150 s, Klutch's 2.5 min).
    pub heartbeat_period: Duration,
    /// The version reported on ClusterBindings (`konnectorVersion`, as `v<semver>`); default
    /// this crate's version.
    pub version: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            informer_sync_timeout: Duration::from_secs(150),
            heartbeat_period: Duration::from_secs(150),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl Settings {
    /// Sets [`informer_sync_timeout`](Self::informer_sync_timeout).
    #[must_use]
    pub fn informer_sync_timeout(mut self, timeout: Duration) -> Self {
        self.informer_sync_timeout = timeout;
        self
    }

    /// Sets [`heartbeat_period`](Self::heartbeat_period).
    #[must_use]
    pub fn heartbeat_period(mut self, period: Duration) -> Self {
        self.heartbeat_period = period;
        self
    }

    /// Sets [`version`](Self::version).
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }
}

/// Decides, per bound export, where the provider copies of its objects live: the
/// [`Placement`] its [`ResourceSyncer`](super::ResourceSyncer) runs with. Any
/// `Fn(&APIServiceExport) -> Placement` is one.
///
/// ```
/// use klutch_sdk::konnector::PlacementPolicy;
/// use klutch_sdk::sync::placement::Placement;
///
/// // Every export namespaced, the provider watched per service namespace.
/// let policy = |_: &klutch_sdk::api::APIServiceExport| Placement::Namespaced { cluster_informer: false };
/// fn takes(_: impl PlacementPolicy) {}
/// takes(policy);
/// ```
pub trait PlacementPolicy: Send + Sync + 'static {
    /// The placement of `export`'s provider copies.
    fn placement(&self, export: &APIServiceExport) -> Placement;
}

impl<F> PlacementPolicy for F
where
    F: Fn(&APIServiceExport) -> Placement + Send + Sync + 'static,
{
    fn placement(&self, export: &APIServiceExport) -> Placement {
        self(export)
    }
}

/// The default [`PlacementPolicy`], Klutch's: what the export says (its scope, informer scope
/// and cluster-scoped isolation), through [`Placement::for_export`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ExportPlacement;

impl PlacementPolicy for ExportPlacement {
    fn placement(&self, export: &APIServiceExport) -> Placement {
        Placement::for_export(
            export.spec.scope,
            export.spec.informer_scope,
            export.spec.cluster_scoped_isolation,
        )
    }
}

//! Prometheus metrics of the konnector engine: [`Metrics::encode`] gives the text format a
//! `GET /metrics` handler serves. `konnector_leader` is the binary's to set (leader election is
//! not part of the engine).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `konnector_sync_latency_seconds` | histogram | `hop` (`spec_up`, `status_down`, `delete`, `adopt`, `claim_up`, `claim_down`) |
//! | `konnector_sync_errors_total` | counter | `hop`, `reason` |
//! | `konnector_provider_connections` | gauge | — |
//! | `konnector_bindings` | gauge | — |
//! | `konnector_heartbeats_total` | counter | `result` (`ok`, `failed`) |
//! | `konnector_leader` | gauge | — (1 while this replica holds the Lease) |
//! | `konnector_api_requests_total` | counter | `cluster` (`consumer`, `provider`), `method` (HTTP method; watches are `GET`) |

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::events::EventSink;
use super::observe::{Hop, ObjectKey, SyncObserver};
use crate::runtime::client::RequestLabels;

/// Label set of latency histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HopLabels {
    /// The sync hop.
    pub hop: String,
}

/// Label set of error counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The sync hop.
    pub hop: String,
    /// The stable error reason.
    pub reason: String,
}

/// Label set of the heartbeat counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `failed`.
    pub result: String,
}

/// Every metric, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// Per-hop latency.
    pub latency: Family<HopLabels, Histogram>,
    /// Per-hop errors.
    pub errors: Family<ErrorLabels, Counter>,
    /// Running provider connections.
    pub provider_connections: Gauge,
    /// APIServiceBindings attached to a provider connection.
    pub bindings: Gauge,
    /// Heartbeats by result.
    pub heartbeats: Family<ResultLabels, Counter>,
    /// 1 while leader.
    pub leader: Gauge,
    /// API requests sent, per cluster and method.
    pub requests: Family<RequestLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("konnector");
        let latency = Family::<HopLabels, Histogram>::new_with_constructor(|| {
            // 5 ms … ~40 s.
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "sync_latency_seconds",
            "Time from the triggering change being seen to the write on the other side, per hop",
            latency.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "sync_errors",
            "Failed sync steps, per hop and reason",
            errors.clone(),
        );
        let provider_connections = Gauge::default();
        registry.register(
            "provider_connections",
            "Running provider connections (one per distinct kubeconfig)",
            provider_connections.clone(),
        );
        let bindings = Gauge::default();
        registry.register(
            "bindings",
            "APIServiceBindings attached to a provider connection",
            bindings.clone(),
        );
        let heartbeats = Family::<ResultLabels, Counter>::default();
        registry.register(
            "heartbeats",
            "ClusterBinding heartbeats, by result",
            heartbeats.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "Whether this replica holds the leader Lease (1) or not (0)",
            leader.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "API requests sent, per cluster and HTTP method",
            requests.clone(),
        );
        Metrics {
            registry,
            latency,
            errors,
            provider_connections,
            bindings,
            heartbeats,
            leader,
            requests,
        }
    }
}

impl Metrics {
    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Hop label value.
pub fn hop_label(hop: Hop) -> &'static str {
    match hop {
        Hop::SpecUp => "spec_up",
        Hop::StatusDown => "status_down",
        Hop::Delete => "delete",
        Hop::Adopt => "adopt",
        Hop::ClaimUp => "claim_up",
        Hop::ClaimDown => "claim_down",
    }
}

/// Feeds sync outcomes into [`Metrics`] and Kubernetes Events, then into the variant's own
/// observers.
#[derive(Clone)]
pub(crate) struct Observer {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Posts Events on consumer objects.
    pub events: Option<EventSink>,
    /// The observers added with `KonnectorBuilder::observer`.
    pub extra: Vec<Arc<dyn SyncObserver>>,
}

impl SyncObserver for Observer {
    fn synced(&self, hop: Hop, took: Duration) {
        self.metrics
            .latency
            .get_or_create(&HopLabels {
                hop: hop_label(hop).into(),
            })
            .observe(took.as_secs_f64());
        for o in &self.extra {
            o.synced(hop, took);
        }
    }

    fn failed(&self, hop: Hop, object: &ObjectKey, reason: &'static str, message: &str) {
        self.metrics
            .errors
            .get_or_create(&ErrorLabels {
                hop: hop_label(hop).into(),
                reason: reason.into(),
            })
            .inc();
        if let Some(events) = &self.events {
            events.warn(object, reason, message);
        }
        for o in &self.extra {
            o.failed(hop, object, reason, message);
        }
    }
}

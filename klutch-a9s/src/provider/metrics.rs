//! Prometheus metrics (`/metrics`): reconcile latency and errors per controller, and requests
//! to brokers and Backup Managers per operation and outcome.

use klutch_sdk::crossplane::ReconcileMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of external request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `servicebroker` or `backupmanager`.
    pub endpoint: String,
    /// The operation (`provision`, `get_instance`, `create_backup`, ...).
    pub operation: String,
    /// `ok`, an HTTP status, `timeout` or `transport`.
    pub outcome: String,
}

/// All metrics of the provider.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconcile: ReconcileMetrics,
    requests: Family<RequestLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric in a new registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("provider_anynines");
        let reconcile = ReconcileMetrics::register(&mut registry);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "external_requests",
            "Requests to service brokers and Backup Managers per operation and outcome",
            requests.clone(),
        );
        Metrics {
            registry,
            reconcile,
            requests,
        }
    }

    /// The reconcile metrics (latency and errors per controller), for the generic runtime.
    pub fn reconcile(&self) -> &ReconcileMetrics {
        &self.reconcile
    }

    /// Records one external request.
    pub fn request(&self, endpoint: &str, operation: &str, outcome: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_owned(),
                operation: operation.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The number of external requests recorded so far (all operations).
    pub fn total_requests(&self) -> u64 {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text.lines()
            .filter(|l| l.starts_with("provider_anynines_external_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

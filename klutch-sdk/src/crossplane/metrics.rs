//! Reconcile metrics in Prometheus' data model: latency and errors per controller. The names
//! are `<prefix>_reconcile_duration_seconds` and `<prefix>_reconcile_errors_total`, with the
//! prefix of the provider's [`Registry`].

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of reconcile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// The controller ([`ExternalClient::CONTROLLER`](super::ExternalClient::CONTROLLER)).
    pub controller: String,
}

/// Reconcile latency and errors per controller; cloning shares the series.
///
/// ```
/// use prometheus_client::registry::Registry;
/// use klutch_sdk::crossplane::ReconcileMetrics;
/// let mut registry = Registry::with_prefix("provider_buckets");
/// let m = ReconcileMetrics::register(&mut registry);
/// m.reconciled("bucket", std::time::Duration::from_millis(20), true);
/// let mut text = String::new();
/// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
/// assert!(text.contains("provider_buckets_reconcile_errors_total{controller=\"bucket\"} 1"));
/// ```
#[derive(Clone, Debug)]
pub struct ReconcileMetrics {
    reconcile_seconds: Family<ControllerLabels, Histogram>,
    reconcile_errors: Family<ControllerLabels, Counter>,
}

impl ReconcileMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let reconcile_seconds = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciles per controller",
            reconcile_seconds.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error, per controller",
            reconcile_errors.clone(),
        );
        ReconcileMetrics {
            reconcile_seconds,
            reconcile_errors,
        }
    }

    /// Records one reconcile.
    pub fn reconciled(&self, controller: &str, took: Duration, error: bool) {
        let l = ControllerLabels {
            controller: controller.to_owned(),
        };
        self.reconcile_seconds
            .get_or_create(&l)
            .observe(took.as_secs_f64());
        if error {
            self.reconcile_errors.get_or_create(&l).inc();
        }
    }
}

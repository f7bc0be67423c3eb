//! [`Provider`]: what every controller of one provider process shares — the Kubernetes
//! client, the [`Settings`] and [`Options`], ProviderConfigUsage tracking, metrics, the Event
//! recorder, per-object backoff — and the provider's own state `S` (e.g. cached API clients).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::metrics::ReconcileMetrics;
use super::settings::{Options, Settings};
use super::usage::UsageTracker;

/// State shared by every controller of one provider process; `S` is the provider's own.
///
/// ```no_run
/// # async fn demo(client: kube::Client) {
/// use klutch_sdk::crossplane::{Options, Provider, Settings};
/// let settings = Settings::new("provider-buckets", "buckets.example.org", "v1alpha1");
/// let provider = Provider::builder(client, settings)
///     .options(Options { enable_management_policies: true, ..Options::default() })
///     .build("my state");
/// assert_eq!(*provider.state(), "my state");
/// # }
/// ```
pub struct Provider<S = ()> {
    client: kube::Client,
    settings: Settings,
    options: Options,
    usage: UsageTracker,
    metrics: Option<ReconcileMetrics>,
    recorder: Recorder,
    failures: Mutex<HashMap<String, u32>>,
    state: S,
}

impl<S> std::fmt::Debug for Provider<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("settings", &self.settings)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Provider`].
pub struct ProviderBuilder {
    client: kube::Client,
    settings: Settings,
    options: Options,
    metrics: Option<ReconcileMetrics>,
}

impl std::fmt::Debug for ProviderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderBuilder")
            .field("settings", &self.settings)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ProviderBuilder {
    /// Controller options (default: [`Options::default`]).
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Records reconcile latency and errors (default: not recorded).
    pub fn metrics(mut self, metrics: ReconcileMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The provider, with its own state.
    pub fn build<S>(self, state: S) -> Provider<S> {
        let reporter = Reporter {
            controller: self.settings.reporter.clone(),
            instance: self.settings.reporter_instance.clone(),
        };
        Provider {
            recorder: Recorder::new(self.client.clone(), reporter),
            client: self.client,
            settings: self.settings,
            options: self.options,
            usage: UsageTracker::new(),
            metrics: self.metrics,
            failures: Mutex::new(HashMap::new()),
            state,
        }
    }
}

impl Provider {
    /// A builder for a provider talking to the cluster of `client`.
    pub fn builder(client: kube::Client, settings: Settings) -> ProviderBuilder {
        ProviderBuilder {
            client,
            settings,
            options: Options::default(),
            metrics: None,
        }
    }
}

impl<S> Provider<S> {
    /// The Kubernetes client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The provider's identity.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The controller options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The provider's own state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// ProviderConfigUsage tracking.
    pub fn usage(&self) -> &UsageTracker {
        &self.usage
    }

    /// The reconcile metrics, if recorded.
    pub fn metrics(&self) -> Option<&ReconcileMetrics> {
        self.metrics.as_ref()
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

    /// The next retry delay of object `key` after a failure: 1 s doubling up to 60 s (±10 %).
    pub(crate) fn backoff(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        let base = Duration::from_secs(1).saturating_mul(1u32 << (*n - 1).min(6));
        jitter(base.min(Duration::from_secs(60)))
    }

    /// Forgets the failures of object `key`.
    pub(crate) fn reset_backoff(&self, key: &str) {
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

//! What a provider tells the runtime about itself ([`Settings`]: names, the API group of its
//! ProviderConfigUsages) and how it wants to be run ([`Options`]: polls, concurrency,
//! timeouts; usually its flags).

use std::time::Duration;

use kube::api::ApiResource;

use super::api::ProviderConfigUsage;
use super::meta::OWNED_ANNOTATIONS;

/// The provider's identity: nothing in [`crate::crossplane`] names a provider, everything
/// comes from here.
///
/// ```
/// use klutch_sdk::crossplane::Settings;
/// let s = Settings::new("provider-buckets", "buckets.example.org", "v1alpha1")
///     .owned_annotation("buckets.example.org/region");
/// assert_eq!(s.field_manager, "provider-buckets");
/// assert_eq!(s.usage.api_version, "buckets.example.org/v1alpha1");
/// assert!(s.owns_annotation("crossplane.io/external-name"));
/// assert!(s.owns_annotation("buckets.example.org/region"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The server-side-apply field manager of every write.
    pub field_manager: String,
    /// The `reportingController` of Events.
    pub reporter: String,
    /// The `reportingInstance` of Events (default: the `POD_NAME` environment variable).
    pub reporter_instance: Option<String>,
    /// The provider's ProviderConfigUsage kind (see [`ProviderConfigUsage::api_resource`]).
    pub usage: ApiResource,
    /// The annotations the runtime applies on every metadata write (and does not react to):
    /// Crossplane's [`OWNED_ANNOTATIONS`] plus the provider's own bookkeeping.
    pub owned_annotations: Vec<String>,
}

impl Settings {
    /// Settings for provider `name` (field manager and Event reporter) whose
    /// ProviderConfigUsages live in `usage_group`/`usage_version`.
    pub fn new(name: &str, usage_group: &str, usage_version: &str) -> Self {
        Settings {
            field_manager: name.to_owned(),
            reporter: name.to_owned(),
            reporter_instance: std::env::var("POD_NAME").ok(),
            usage: ProviderConfigUsage::api_resource(usage_group, usage_version),
            owned_annotations: OWNED_ANNOTATIONS.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    /// A different field manager.
    pub fn field_manager(mut self, name: impl Into<String>) -> Self {
        self.field_manager = name.into();
        self
    }

    /// A different Event reporter.
    pub fn reporter(mut self, name: impl Into<String>) -> Self {
        self.reporter = name.into();
        self
    }

    /// One more annotation the provider writes itself (kept on metadata writes; changes do
    /// not trigger a reconcile).
    pub fn owned_annotation(mut self, key: impl Into<String>) -> Self {
        self.owned_annotations.push(key.into());
        self
    }

    /// True when `key` is one of [`Settings::owned_annotations`].
    pub fn owns_annotation(&self, key: &str) -> bool {
        self.owned_annotations.iter().any(|a| a == key)
    }
}

/// How the controllers run (a provider's flags, usually).
#[derive(Clone, Debug, PartialEq, Eq)]
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
            label_selector: None,
        }
    }
}

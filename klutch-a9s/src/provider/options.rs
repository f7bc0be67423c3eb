//! [`Options`]: the settings of one provider process (its flags): the generic controller
//! options of [`klutch_sdk::crossplane::Options`] plus the a9s clients' timeouts and
//! behaviours.

use std::time::Duration;

/// The provider's settings.
#[derive(Clone, Debug)]
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
    /// Timeout of one broker request.
    pub broker_timeout: Duration,
    /// Timeout of one Backup Manager request.
    pub backup_manager_timeout: Duration,
    /// How long the broker catalog is cached per ProviderConfig.
    pub catalog_ttl: Duration,
    /// Platform limit for asynchronous operations.
    pub max_polling_duration: Duration,
    /// Deprovision failed provisions automatically and start over (spec 4.6).
    pub orphan_mitigation: bool,
    /// Only reconcile managed resources matching this label selector (sharding, tests).
    pub label_selector: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        let generic = klutch_sdk::crossplane::Options::default();
        Options {
            poll: generic.poll,
            sync: generic.sync,
            max_reconcile_rate: generic.max_reconcile_rate,
            enable_management_policies: generic.enable_management_policies,
            reconcile_timeout: generic.reconcile_timeout,
            broker_timeout: Duration::from_secs(60),
            backup_manager_timeout: Duration::from_secs(60),
            catalog_ttl: Duration::from_secs(60),
            max_polling_duration: Duration::from_secs(24 * 3600),
            orphan_mitigation: false,
            label_selector: generic.label_selector,
        }
    }
}

impl Options {
    /// The generic controller options among these.
    ///
    /// ```
    /// let o = klutch_a9s::provider::Options { max_reconcile_rate: 3, ..Default::default() };
    /// assert_eq!(o.reconciler().max_reconcile_rate, 3);
    /// ```
    pub fn reconciler(&self) -> klutch_sdk::crossplane::Options {
        klutch_sdk::crossplane::Options {
            poll: self.poll,
            sync: self.sync,
            max_reconcile_rate: self.max_reconcile_rate,
            enable_management_policies: self.enable_management_policies,
            reconcile_timeout: self.reconcile_timeout,
            label_selector: self.label_selector.clone(),
        }
    }
}

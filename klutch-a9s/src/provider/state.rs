//! [`State`]: what the a9s controllers share besides the generic
//! [`Provider`](klutch_sdk::crossplane::Provider) — the options and the broker and Backup
//! Manager clients cached per ProviderConfig.

use std::sync::Arc;

use super::config::ClientCache;
use super::metrics::Metrics;
use super::options::Options;

/// The provider state of provider-anynines (`S` of [`klutch_sdk::crossplane::Provider`]).
pub struct State {
    /// The settings.
    pub options: Options,
    /// Broker and Backup Manager clients per ProviderConfig.
    pub clients: ClientCache,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl State {
    /// The state for `options`, recording requests in `metrics`.
    pub fn new(options: Options, metrics: Arc<Metrics>) -> Self {
        State {
            clients: ClientCache::new(&options, metrics),
            options,
        }
    }
}

/// The reconcile context of an a9s kind.
pub type Cx<'a, K> = klutch_sdk::crossplane::Cx<'a, K, State>;
/// The provider of the a9s controllers.
pub type Provider = klutch_sdk::crossplane::Provider<State>;

//! What the controllers of the engine share: the engine-wide state ([`Shared`]), and per provider
//! connection the provider client and its member bindings ([`Provider`]). A module of its own so
//! that the controllers (manager, provider, context, heartbeat) depend on it and not on each
//! other.

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::api::Api;
use tokio::sync::watch;

use super::metrics::Metrics;
use super::observe::SyncObserver;
use super::settings::{PlacementPolicy, Settings};
use super::status;
use crate::api::conditions::{self, Condition};
use crate::api::{APIServiceBinding, APIServiceBindingStatus};

/// State shared by every controller.
pub struct Shared {
    /// The app (consumer) cluster.
    pub consumer: kube::Client,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Metrics, Events and the variant's observers, for the syncers.
    pub observer: Arc<dyn SyncObserver>,
    /// Where provider copies go.
    pub placement: Arc<dyn PlacementPolicy>,
    /// Settings.
    pub settings: Settings,
}

/// Where a provider connection goes.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// The kubeconfig bytes.
    pub kubeconfig: Vec<u8>,
    /// The provider (cluster) namespace: the kubeconfig's context namespace.
    pub namespace: String,
    /// The consumer Secret the bytes came from (`namespace`, `name`).
    pub secret: (String, String),
}

/// The provider side of one connection, shared by its tasks.
pub struct Provider {
    /// Shared konnector state.
    pub shared: Arc<Shared>,
    /// Client for the provider (the binding's kubeconfig).
    pub client: kube::Client,
    /// The provider namespace.
    pub namespace: String,
    /// Bindings (`namespace/name`) attached to this connection.
    pub members: watch::Receiver<BTreeSet<String>>,
}

impl Provider {
    /// The APIServiceBinding API for `ns`.
    pub fn bindings(&self, ns: &str) -> Api<APIServiceBinding> {
        Api::namespaced(self.shared.consumer.clone(), ns)
    }

    /// Sets `condition` on every member binding.
    pub async fn set_on_members(&self, condition: Condition) {
        let members = self.members.borrow().clone();
        for key in members {
            let (ns, name) = key.split_once('/').unwrap_or(("", &key));
            let _ = status::update_binding(
                &self.bindings(ns),
                name,
                |s: &mut APIServiceBindingStatus| {
                    conditions::set(&mut s.conditions, condition.clone());
                },
            )
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "binding status"));
        }
    }
}

//! The Crossplane provider for anynines data services (cargo feature `provider`), built on
//! [`klutch_sdk::crossplane`]: it turns `dataservices.anynines.com/v1` ServiceInstance,
//! ServiceBinding, Backup and Restore objects into Open Service Broker ([`klutch_osb`]) and
//! a9s Backup Manager ([`crate::backup`]) calls. The `provider-anynines` binary is its
//! command line.
//!
//! * [`api`]: the resource types and their CRDs.
//! * [`meta`]: the provider's labels and annotations (and Crossplane's, re-exported).
//! * [`config`]: ProviderConfigs: credentials, cached clients, error messages.
//! * [`controllers`]: the kind-specific logic and the ProviderConfig controller.
//! * [`run`]: starts every controller; [`Options`]: their settings (the binary's flags).
//! * [`metrics`], [`health`], [`mod@manifests`]: Prometheus metrics, the `/backend-health` probe,
//!   the Crossplane package and install manifests.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) {
//! use std::sync::Arc;
//! use klutch_a9s::provider::{Options, metrics::Metrics, run};
//! let metrics = Arc::new(Metrics::new());
//! run::controllers(client, Options::default(), metrics, std::future::pending()).await;
//! # }
//! ```

pub mod api;
pub mod config;
pub mod controllers;
pub mod health;
pub mod manifests;
pub mod meta;
pub mod metrics;
pub mod options;
pub mod run;
pub mod state;

pub use manifests::{ManifestOptions, manifests, package_files};
pub use options::Options;
pub use state::State;

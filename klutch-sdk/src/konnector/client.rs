//! The konnector's API clients: every request counted in `konnector_api_requests_total` under
//! the cluster it goes to, with the konnector's user agent and timeouts — built on
//! [`crate::runtime::client`].

use std::time::Duration;

use super::metrics::Metrics;
use crate::runtime::client::{self, Tuning};

/// The settings of every konnector client: user agent `konnector/<version>`, a read timeout
/// above the apiserver's watch timeout (330 s) and a 10 s connect timeout.
///
/// ```
/// let mut config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
/// klutch_sdk::konnector::client::tuning().apply(&mut config).unwrap();
/// assert_eq!(config.read_timeout, Some(std::time::Duration::from_secs(330)));
/// ```
pub fn tuning() -> Tuning {
    Tuning::new()
        .user_agent(format!("konnector/{}", env!("CARGO_PKG_VERSION")))
        .read_timeout(Duration::from_secs(330))
        .connect_timeout(Duration::from_secs(10))
}

/// A client for `config`, [tuned](tuning), whose requests are counted in `metrics` under
/// `cluster` (`consumer` or `provider`).
pub fn counted(
    mut config: kube::Config,
    cluster: &'static str,
    metrics: &Metrics,
) -> client::Result<kube::Client> {
    tuning().apply(&mut config)?;
    client::counted_client(config, cluster, metrics.requests.clone())
}

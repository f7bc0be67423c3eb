//! Interim: the request-counting client the engine builds provider clients with (and the
//! konnector binary its app-cluster client). To be replaced by the shared request-counting layer
//! of `klutch_sdk::runtime`; nothing else should grow on it.

use std::sync::Arc;
use std::time::Duration;

use super::metrics::{Metrics, RequestLabels};

/// A client for `config` whose requests are counted in `konnector_api_requests_total` under
/// `cluster` (`consumer` or `provider`).
///
/// Interim, until `klutch_sdk::runtime` provides the request-counting layer.
pub fn counted_client(
    config: kube::Config,
    cluster: &'static str,
    metrics: &Arc<Metrics>,
) -> Result<kube::Client, kube::Error> {
    let metrics = metrics.clone();
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        metrics
            .requests
            .get_or_create(&RequestLabels {
                cluster: cluster.into(),
                method: req.method().as_str().into(),
            })
            .inc();
        req
    });
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build())
}

/// Client settings for every cluster: user agent `konnector/<version>`, a read timeout above the
/// watch timeout, a 10 s connect timeout.
///
/// Interim, until `klutch_sdk::runtime` provides the client settings.
pub fn tune(config: &mut kube::Config) {
    config.read_timeout = Some(Duration::from_secs(330));
    config.connect_timeout = Some(Duration::from_secs(10));
    config.headers.push((
        http::header::USER_AGENT,
        format!("konnector/{}", env!("CARGO_PKG_VERSION"))
            .parse()
            .expect("a valid header value"),
    ));
}

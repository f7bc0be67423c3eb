//! Kubernetes clients of a binary: loading the config ([`load_config`]), the settings every
//! client gets ([`Tuning`]: user agent, timeouts), and a [`kube::Client`] whose requests are
//! counted per cluster and HTTP method ([`counted_client`]).
//!
//! The counter is anything implementing [`RequestCounter`]: a closure, or a prometheus-client
//! `Family<RequestLabels, Counter>` registered in the binary's own registry:
//!
//! ```no_run
//! use std::time::Duration;
//! use prometheus_client::metrics::{counter::Counter, family::Family};
//! use prometheus_client::registry::Registry;
//! use klutch_sdk::runtime::client::{RequestLabels, Tuning, counted_client, load_config};
//!
//! # async fn demo() -> Result<(), klutch_sdk::runtime::client::Error> {
//! let mut registry = Registry::with_prefix("konnector");
//! let requests = Family::<RequestLabels, Counter>::default();
//! registry.register("api_requests", "API requests sent, per cluster and HTTP method", requests.clone());
//!
//! let mut config = load_config(None).await?;
//! Tuning::new()
//!     .user_agent("konnector/1.0.0")
//!     .read_timeout(Duration::from_secs(330))
//!     .connect_timeout(Duration::from_secs(10))
//!     .apply(&mut config)?;
//! let client = counted_client(config, "consumer", requests)?;
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kubeconfig file could not be read or used.
    #[error("read the kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither in-cluster credentials nor `$KUBECONFIG`/`~/.kube/config` work.
    #[error("infer the Kubernetes config (in-cluster, $KUBECONFIG or ~/.kube/config)")]
    Infer(#[source] kube::config::InferConfigError),
    /// The user agent is not a valid header value.
    #[error("invalid user agent {0:?}")]
    UserAgent(String),
    /// kube refused the config (e.g. its TLS settings).
    #[error("build the Kubernetes client")]
    Build(#[source] kube::Error),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The config from the kubeconfig file `path`, or when `None` inferred (in-cluster credentials,
/// else `$KUBECONFIG` or `~/.kube/config`).
pub async fn load_config(path: Option<&Path>) -> Result<kube::Config> {
    let Some(path) = path else {
        return kube::Config::infer().await.map_err(Error::Infer);
    };
    let err = |source| Error::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(err)?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(err)
}

/// Settings applied to a [`kube::Config`]; unset ones are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    user_agent: Option<String>,
    read_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
}

impl Tuning {
    /// Changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `User-Agent` header, e.g. `konnector/1.0.0`.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = Some(agent.into());
        self
    }

    /// How long a response may take (watches need more than their server-side timeout).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// How long connecting may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Writes the settings into `config`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use klutch_sdk::runtime::client::Tuning;
    /// let mut config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
    /// Tuning::new().user_agent("my-agent/1.0").read_timeout(Duration::from_secs(330)).apply(&mut config).unwrap();
    /// assert_eq!(config.read_timeout, Some(Duration::from_secs(330)));
    /// assert_eq!(config.headers[0].1, "my-agent/1.0");
    /// ```
    pub fn apply(&self, config: &mut kube::Config) -> Result<()> {
        if let Some(timeout) = self.read_timeout {
            config.read_timeout = Some(timeout);
        }
        if let Some(timeout) = self.connect_timeout {
            config.connect_timeout = Some(timeout);
        }
        if let Some(agent) = &self.user_agent {
            let value = agent.parse().map_err(|_| Error::UserAgent(agent.clone()))?;
            config.headers.push((http::header::USER_AGENT, value));
        }
        Ok(())
    }
}

/// Counts one request sent to `cluster` with `method`.
pub trait RequestCounter: Send + Sync + 'static {
    /// Called once per request, before it is sent (a watch counts once, as `GET`).
    fn count(&self, cluster: &str, method: &http::Method);
}

impl<F> RequestCounter for F
where
    F: Fn(&str, &http::Method) + Send + Sync + 'static,
{
    fn count(&self, cluster: &str, method: &http::Method) {
        self(cluster, method);
    }
}

/// Labels of a request counter: the cluster name given to [`counted_client`] and the method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The cluster, e.g. `consumer` or `provider`.
    pub cluster: String,
    /// The HTTP method.
    pub method: String,
}

impl RequestCounter for Family<RequestLabels, Counter> {
    fn count(&self, cluster: &str, method: &http::Method) {
        self.get_or_create(&RequestLabels {
            cluster: cluster.to_owned(),
            method: method.as_str().to_owned(),
        })
        .inc();
    }
}

/// A client for `config` that calls `counter` for every request, labelled with `cluster`.
pub fn counted_client(
    config: kube::Config,
    cluster: impl Into<Arc<str>>,
    counter: impl RequestCounter,
) -> Result<kube::Client> {
    let cluster: Arc<str> = cluster.into();
    let counter: Arc<dyn RequestCounter> = Arc::new(counter);
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        counter.count(&cluster, req.method());
        req
    });
    Ok(kube::client::ClientBuilder::try_from(config)
        .map_err(Error::Build)?
        .with_layer(&layer)
        .build())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn tuning_sets_only_what_it_is_given() {
        let mut config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        let before = config.connect_timeout;
        Tuning::new()
            .read_timeout(Duration::from_secs(330))
            .apply(&mut config)
            .unwrap();
        assert_eq!(config.read_timeout, Some(Duration::from_secs(330)));
        assert_eq!(config.connect_timeout, before);
        assert!(config.headers.is_empty());
        assert!(matches!(
            Tuning::new().user_agent("bad\nagent").apply(&mut config),
            Err(Error::UserAgent(_))
        ));
    }

    #[tokio::test]
    async fn every_request_is_counted_with_cluster_and_method() {
        // A server that answers every request with 404, so the client gets a quick reply.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::NOT_FOUND });
            axum::serve(listener, app).await.unwrap();
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        let client = counted_client(
            config.clone(),
            "consumer",
            move |cluster: &str, method: &http::Method| {
                log.lock().unwrap().push(format!("{cluster} {method}"));
            },
        )
        .unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "default");
        let _ = api.get_opt("x").await;
        let _ = api.delete("x", &Default::default()).await;
        assert_eq!(*seen.lock().unwrap(), ["consumer GET", "consumer DELETE"]);

        let family = Family::<RequestLabels, Counter>::default();
        let client = counted_client(config, "provider", family.clone()).unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "default");
        let _ = api.get_opt("x").await;
        let labels = RequestLabels {
            cluster: "provider".into(),
            method: "GET".into(),
        };
        assert_eq!(family.get_or_create(&labels).get(), 1);
    }
}

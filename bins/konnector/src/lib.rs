//! The konnector: the Klutch sync agent that runs in an app cluster. The binary is a thin
//! wrapper around [`run`]; the sync primitives it drives live in [`klutch_sdk::sync`].
//!
//! Start-up: build the app-cluster client → create or update the APIServiceBinding CRD and wait
//! until it is Established → serve `/healthz` and `/metrics` → campaign for the Lease → the
//! leader runs [`manager::run`] until it loses the Lease (then the process exits non-zero) or is
//! told to stop.

pub mod cli;
pub mod context;
pub mod events;
pub mod heartbeat;
pub mod kubeconfig;
pub mod leader;
pub mod manager;
pub mod metrics;
pub mod provider;
pub mod server;
pub mod status;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use tokio_util::sync::CancellationToken;

pub use cli::Cli;

/// Why the konnector stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No client for the app cluster.
    #[error("build a client for the app cluster")]
    Client(#[source] kube::Error),
    /// Reading the app cluster's kubeconfig failed.
    #[error("read the app cluster kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Installing the APIServiceBinding CRD failed.
    #[error("install the APIServiceBinding CRD")]
    InstallCrd(#[source] kube::Error),
    /// The CRD did not become Established.
    #[error("the APIServiceBinding CRD did not become Established within 60 s")]
    CrdNotEstablished,
    /// Binding the HTTP server failed.
    #[error("listen on {address}")]
    Listen {
        /// The address.
        address: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Leader election could not be set up.
    #[error(transparent)]
    Leader(#[from] leader::Error),
    /// This replica lost the Lease; it exits so that its pod restarts clean.
    #[error("lost the leader Lease; exiting so the pod restarts")]
    LeadershipLost,
    /// Control-plane mode is not implemented.
    #[error("--control-plane-mode is not implemented by this konnector yet")]
    ControlPlaneMode,
}

/// Settings of the controllers.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long provider lists may take before `InformersSynced=False`.
    pub informer_sync_timeout: Duration,
    /// Heartbeat period.
    pub heartbeat_period: Duration,
    /// The version reported on ClusterBindings.
    pub version: String,
}

/// State shared by every controller.
pub struct Shared {
    /// The app (consumer) cluster.
    pub consumer: kube::Client,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Metrics and Events for the SDK syncers.
    pub observer: Arc<metrics::Observer>,
    /// Settings.
    pub settings: Settings,
}

/// A client for `config` whose requests are counted in `konnector_api_requests_total` under
/// `cluster`.
pub fn counted_client(
    config: kube::Config,
    cluster: &'static str,
    metrics: &Arc<metrics::Metrics>,
) -> Result<kube::Client, kube::Error> {
    let metrics = metrics.clone();
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        metrics
            .requests
            .get_or_create(&metrics::RequestLabels {
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

/// Client settings for every cluster: user agent `konnector`, generous timeouts.
pub fn tune(config: &mut kube::Config) {
    config.read_timeout = Some(Duration::from_secs(330));
    config.connect_timeout = Some(Duration::from_secs(10));
    config.headers.push((
        http_user_agent(),
        format!("konnector/{}", env!("CARGO_PKG_VERSION"))
            .parse()
            .expect("a valid header value"),
    ));
}

fn http_user_agent() -> axum::http::HeaderName {
    axum::http::header::USER_AGENT
}

/// Sets up logging per `--v` and `--log-format` (RUST_LOG overrides the level).
pub fn init_logging(cli: &Cli) {
    let level = match cli.verbosity {
        0 | 1 => "warn",
        2 | 3 => "info",
        4 | 5 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},kube_runtime=warn,kube_client=warn,hyper=warn,tower=warn"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        cli::LogFormat::Json => builder.json().init(),
        cli::LogFormat::Text => builder.init(),
    }
}

/// Runs the konnector until SIGTERM/SIGINT (`Ok`) or a fatal error.
pub async fn run(cli: Cli) -> Result<(), Error> {
    if cli.control_plane_mode {
        return Err(Error::ControlPlaneMode);
    }
    let mut config = match &cli.kubeconfig {
        Some(path) => {
            let kc =
                kube::config::Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|source| Error::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::Client(kube::Error::InferConfig(e)))?,
    };
    tune(&mut config);
    let metrics = Arc::new(metrics::Metrics::default());
    let consumer = counted_client(config, "consumer", &metrics).map_err(Error::Client)?;
    install_binding_crd(&consumer).await?;

    let identity = cli.pod_name.clone().unwrap_or_else(|| {
        use rand::Rng as _;
        let suffix: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(12)
            .map(char::from)
            .collect();
        format!("konnector-{}", suffix.to_lowercase())
    });
    let lease_ns = cli
        .lease_namespace
        .clone()
        .or_else(|| cli.pod_namespace.clone())
        .unwrap_or_else(|| "kube-system".into());

    let leader_state = Arc::new(leader::LeaderState::default());
    let listener = tokio::net::TcpListener::bind(cli.healthz_address)
        .await
        .map_err(|source| Error::Listen {
            address: cli.healthz_address.to_string(),
            source,
        })?;
    let app = server::router(leader_state.clone(), metrics.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });

    let observer = Arc::new(metrics::Observer {
        metrics: metrics.clone(),
        events: Some(events::EventSink::new(consumer.clone(), &identity)),
    });
    let shared = Arc::new(Shared {
        consumer: consumer.clone(),
        metrics: metrics.clone(),
        observer,
        settings: Settings {
            informer_sync_timeout: cli.informer_sync_timeout,
            heartbeat_period: cli.heartbeat_period,
            version: env!("CARGO_PKG_VERSION").into(),
        },
    });

    let manager = leader::manager(consumer.clone(), &lease_ns, &cli.lease_name, &identity).await?;
    let (mut is_leader, lease_task) = manager.watch().await;
    tracing::info!(identity = %identity, lease = %format!("{lease_ns}/{}", cli.lease_name), "campaigning for leadership");

    // Wait for leadership (or a signal).
    loop {
        if *is_leader.borrow_and_update() {
            break;
        }
        tokio::select! {
            () = shutdown_signal() => {
                drop(is_leader);
                let _ = lease_task.await;
                return Ok(());
            }
            r = is_leader.changed() => if r.is_err() { return Err(Error::LeadershipLost) },
        }
    }
    tracing::info!(identity = %identity, "became the leader; starting controllers");
    let now = jiff::Timestamp::now().as_second();
    leader_state.last_renew.store(now, Ordering::Release);
    leader_state.leader.store(true, Ordering::Release);
    metrics.leader.set(1);

    let cancel = CancellationToken::new();
    let controllers = tokio::spawn(manager::run(shared.clone(), cancel.clone()));
    let renewals = leader::watch_renewals(
        Api::<Lease>::namespaced(consumer.clone(), &lease_ns),
        cli.lease_name.clone(),
        identity.clone(),
        leader_state.clone(),
    );
    let outcome = tokio::select! {
        () = shutdown_signal() => Ok(()),
        () = renewals => Err(Error::LeadershipLost),
        r = async {
            loop {
                if is_leader.changed().await.is_err() || !*is_leader.borrow_and_update() {
                    break;
                }
            }
        } => { let () = r; Err(Error::LeadershipLost) }
    };
    // Stop working first, then give up the Lease.
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), controllers).await;
    leader_state.leader.store(false, Ordering::Release);
    metrics.leader.set(0);
    drop(is_leader);
    let _ = tokio::time::timeout(Duration::from_secs(5), lease_task).await;
    outcome
}

/// Creates or updates the APIServiceBinding CRD (server-side apply) and waits until it is
/// Established.
pub async fn install_binding_crd(client: &kube::Client) -> Result<(), Error> {
    let crd = klutch_sdk::api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "APIServiceBinding")
        .unwrap_or_else(klutch_sdk::api::APIServiceBinding::crd);
    let name = crd.metadata.name.clone().unwrap_or_default();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut body = serde_json::to_value(&crd).expect("a CRD serialises");
    body["apiVersion"] = "apiextensions.k8s.io/v1".into();
    body["kind"] = "CustomResourceDefinition".into();
    api.patch(
        &name,
        &PatchParams::apply("konnector").force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(Error::InstallCrd)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let crd = api.get(&name).await.map_err(Error::InstallCrd)?;
        let established = crd.status.and_then(|s| s.conditions).is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
        if established {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::CrdNotEstablished);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

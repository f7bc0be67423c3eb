//! `konnector`: the Klutch sync agent that runs in an app cluster. See `konnector --help` and
//! docs/konnector.md. The engine is `klutch_sdk::konnector`; this binary wires it to the flags,
//! logging, leader election and the `/healthz` + `/metrics` server of `klutch_sdk::runtime`.
//!
//! Start-up: build the app-cluster client → create or update the APIServiceBinding CRD and wait
//! until it is Established → serve `/healthz` and `/metrics` → campaign for the Lease → the
//! leader runs the engine until it loses the Lease (then the process exits non-zero) or is told
//! to stop.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use klutch_sdk::konnector::{self, Konnector, Metrics, Settings};
use klutch_sdk::runtime::lease::{self, LeaderElection};
use klutch_sdk::runtime::{client, health, logging::Logging, signals};

use cli::Cli;

/// Lease duration and renewal grace (as Klutch's konnector).
const LEASE_DURATION: Duration = Duration::from_secs(15);
const LEASE_GRACE: Duration = Duration::from_secs(5);
/// How long the engine may take to stop before the Lease is given up.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the konnector stopped.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// Logging could not be set up.
    #[error("set up logging")]
    Logging(#[source] klutch_sdk::runtime::logging::Error),
    /// No client for the app cluster.
    #[error("build a client for the app cluster")]
    Client(#[source] client::Error),
    /// Reading the app cluster's kubeconfig failed.
    #[error("read the app cluster kubeconfig {path}")]
    Kubeconfig {
        path: String,
        #[source]
        source: client::Error,
    },
    /// The engine could not start (the APIServiceBinding CRD).
    #[error(transparent)]
    Engine(#[from] konnector::Error),
    /// The `/healthz` + `/metrics` server could not listen.
    #[error(transparent)]
    Listen(#[from] health::Error),
    /// Leader election could not be set up.
    #[error(transparent)]
    Leader(lease::Error),
    /// This replica lost the Lease; it exits so that its pod restarts clean.
    #[error("lost the leader Lease; exiting so the pod restarts")]
    LeadershipLost(#[source] lease::Error),
    /// Control-plane mode is not implemented.
    #[error("--control-plane-mode is not implemented by this konnector yet")]
    ControlPlaneMode,
}

#[tokio::main]
async fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let cli = Cli::parse();
    match init_logging(&cli).and(run(cli).await) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = klutch_sdk::runtime::report::error_chain(&e);
            tracing::error!(error = %msg, "konnector stopped");
            eprintln!("konnector: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Logging per `--v` (Klutch's klog levels) and `--log-format`; `RUST_LOG` overrides the level.
fn init_logging(cli: &Cli) -> Result<(), Error> {
    let level = match cli.verbosity {
        0 | 1 => "warn",
        2 | 3 => "info",
        4 | 5 => "debug",
        _ => "trace",
    };
    Logging::new(format!(
        "{level},kube_runtime=warn,kube_client=warn,hyper=warn,tower=warn"
    ))
    .format(cli.log_format)
    .init()
    .map_err(Error::Logging)
}

/// Runs the konnector until SIGTERM/SIGINT (`Ok`) or a fatal error.
async fn run(cli: Cli) -> Result<(), Error> {
    if cli.control_plane_mode {
        return Err(Error::ControlPlaneMode);
    }
    let config = client::load_config(cli.kubeconfig.as_deref())
        .await
        .map_err(|source| match &cli.kubeconfig {
            Some(path) => Error::Kubeconfig {
                path: path.display().to_string(),
                source,
            },
            None => Error::Client(source),
        })?;
    let metrics = Arc::new(Metrics::default());
    let consumer =
        konnector::client::counted(config, "consumer", &metrics).map_err(Error::Client)?;
    let identity = cli.pod_name.clone().unwrap_or_else(|| {
        use rand::Rng as _;
        let suffix: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(12)
            .map(char::from)
            .collect();
        format!("konnector-{}", suffix.to_lowercase())
    });
    let konnector = Konnector::builder(consumer.clone())
        .settings(
            Settings::default()
                .informer_sync_timeout(cli.informer_sync_timeout)
                .heartbeat_period(cli.heartbeat_period)
                .version(env!("CARGO_PKG_VERSION")),
        )
        .metrics(metrics.clone())
        .events(Some(&identity))
        .build();
    konnector.install_crd().await?;

    let lease_ns = cli
        .lease_namespace
        .clone()
        .or_else(|| cli.pod_namespace.clone())
        .unwrap_or_else(|| "kube-system".into());
    let leader_gauge = metrics.leader.clone();
    let election = LeaderElection::new(consumer, lease_ns, cli.lease_name.clone())
        .with_identity(identity.clone())
        .with_duration(LEASE_DURATION)
        .with_grace(LEASE_GRACE)
        .with_field_manager(format!("konnector-{identity}"))
        .on_change(move |leader| {
            leader_gauge.set(i64::from(leader));
        });

    let app = health::Endpoints::new()
        .healthz(health::HealthChecks::new().leader_election(election.state()))
        .metrics(move || metrics.encode())
        .router();
    health::serve(cli.healthz_address, app).await?;

    tracing::info!(identity = %identity, lease = %election.lease(), "campaigning for leadership");
    let term = election
        .run(signals::shutdown(), |stop| async move {
            tracing::info!(identity = %identity, "became the leader; starting controllers");
            let engine = tokio::spawn(konnector.run(stop.clone().cancelled_owned()));
            stop.cancelled().await;
            // Stop working first; the Lease is given up after this returns.
            let _ = tokio::time::timeout(STOP_TIMEOUT, engine).await;
        })
        .await;
    match term {
        Ok(_) => Ok(()),
        Err(e @ (lease::Error::Lost { .. } | lease::Error::Stopped { .. })) => {
            Err(Error::LeadershipLost(e))
        }
        Err(e) => Err(Error::Leader(e)),
    }
}

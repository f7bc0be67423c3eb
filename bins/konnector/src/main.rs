//! `konnector`: the Klutch sync agent that runs in an app cluster. See `konnector --help` and
//! docs/konnector.md. The engine is `klutch_sdk::konnector`; this binary adds the flags, logging,
//! leader election and the `/healthz` + `/metrics` server.
//!
//! Start-up: build the app-cluster client → create or update the APIServiceBinding CRD and wait
//! until it is Established → serve `/healthz` and `/metrics` → campaign for the Lease → the
//! leader runs the engine until it loses the Lease (then the process exits non-zero) or is told
//! to stop.

mod cli;
mod leader;
mod process;
mod server;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser as _;
use k8s_openapi::api::coordination::v1::Lease;
use klutch_sdk::konnector::{Konnector, Metrics, Settings, counted_client, tune};
use kube::api::Api;
use tokio_util::sync::CancellationToken;

use cli::Cli;
use process::shutdown_signal;

/// Why the konnector stopped.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// No client for the app cluster.
    #[error("build a client for the app cluster")]
    Client(#[source] kube::Error),
    /// Reading the app cluster's kubeconfig failed.
    #[error("read the app cluster kubeconfig {path}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The engine could not start (the APIServiceBinding CRD).
    #[error(transparent)]
    Engine(#[from] klutch_sdk::konnector::Error),
    /// Binding the HTTP server failed.
    #[error("listen on {address}")]
    Listen {
        address: String,
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

#[tokio::main]
async fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let cli = Cli::parse();
    process::init_logging(&cli);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!(error = %msg, "konnector stopped");
            eprintln!("konnector: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the konnector until SIGTERM/SIGINT (`Ok`) or a fatal error.
async fn run(cli: Cli) -> Result<(), Error> {
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
    let metrics = Arc::new(Metrics::default());
    let consumer = counted_client(config, "consumer", &metrics).map_err(Error::Client)?;
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
    let stop = cancel.clone();
    let controllers = tokio::spawn(konnector.run(async move { stop.cancelled().await }));
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

//! `provider-anynines`: the Crossplane provider for anynines data services. Everything but
//! process wiring (flags, logs, probes, leader election) lives in `klutch_a9s::provider`.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use clap::Parser;
use cli::Cli;
use klutch_a9s::provider::metrics::Metrics;
use kube_lease_manager::LeaseManagerBuilder;

/// The leader-election Lease (Klutch v1.5's name).
const LEASE: &str = "crossplane-leader-election-provider-anynines";

fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        if cli.debug {
            "debug,hyper=info,kube_client=info,tower=info"
        } else {
            "info"
        }
        .into()
    });
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "provider-anynines stopped");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn serve(
    addr: std::net::SocketAddr,
    app: axum::Router,
    what: &'static str,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for {what} on {addr}: {e}"))?;
    tracing::info!(%addr, "{what} server listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "{what} server failed");
        }
    });
    Ok(())
}

/// The probe server: `/healthz` answers `ok`, `/backend-health` reports each ProviderConfig.
fn probes(client: kube::Client) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(klutch_a9s::provider::health::router(client))
}

/// The metrics server: `/metrics` in the Prometheus text format.
fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }),
        )
        .with_state(metrics)
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    if cli.enable_external_secret_stores {
        tracing::warn!(
            "--enable-external-secret-stores is accepted but not supported yet: publishConnectionDetailsTo is ignored"
        );
    }
    let client = kube::Client::try_default().await.map_err(|e| {
        format!("cannot build a Kubernetes client (in-cluster config or KUBECONFIG): {e}")
    })?;
    let metrics = Arc::new(Metrics::new());
    serve(
        cli.health_probe_bind_address,
        probes(client.clone()),
        "probe",
    )
    .await?;
    serve(
        cli.metrics_bind_address,
        metrics_router(metrics.clone()),
        "metrics",
    )
    .await?;
    let options = cli.options();

    if !cli.leader_election {
        klutch_a9s::provider::run::controllers(client, options, metrics, shutdown_signal()).await;
        return Ok(());
    }
    let manager = LeaseManagerBuilder::new(client.clone(), LEASE)
        .with_namespace(cli.namespace.clone())
        .with_duration(60)
        .with_grace(10)
        .build()
        .await
        .map_err(|e| format!("cannot set up leader election: {e}"))?;
    let (mut leader, task) = manager.watch().await;
    tracing::info!(lease = LEASE, namespace = %cli.namespace, "waiting for leadership");
    let elected = tokio::select! {
        r = leader.wait_for(|l| *l) => { r.map(|_| true).map_err(|e| format!("leader election stopped: {e}"))? }
        _ = shutdown_signal() => false,
    };
    if !elected {
        drop(leader);
        let _ = task.await;
        return Ok(());
    }
    tracing::info!("became leader; starting controllers");
    let mut lost = leader.clone();
    let stop = async move {
        tokio::select! {
            _ = shutdown_signal() => {},
            _ = lost.wait_for(|l| !*l) => { tracing::error!("lost leadership; stopping"); },
        }
    };
    klutch_a9s::provider::run::controllers(client, options, metrics, stop).await;
    let still_leader = *leader.borrow();
    drop(leader);
    let _ = task.await;
    if still_leader {
        Ok(())
    } else {
        Err("lost leadership".into())
    }
}

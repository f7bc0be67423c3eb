//! `provider-anynines`: the Crossplane provider for anynines data services. Everything but
//! process wiring (flags, logs, probes, leader election) lives in `klutch_a9s::provider`; the
//! wiring itself is `klutch_sdk::runtime`.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use cli::Cli;
use klutch_a9s::provider::metrics::Metrics;
use klutch_sdk::runtime::health::{self, Endpoints, HealthChecks};
use klutch_sdk::runtime::lease::LeaderElection;
use klutch_sdk::runtime::logging::{LogFormat, Logging};
use klutch_sdk::runtime::signals;

/// The leader-election Lease (Klutch v1.5's name), its duration and renewal grace.
const LEASE: &str = "crossplane-leader-election-provider-anynines";
const LEASE_DURATION: Duration = Duration::from_secs(60);
const LEASE_GRACE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let cli = Cli::parse();
    let filter = if cli.debug {
        "debug,hyper=info,kube_client=info,tower=info"
    } else {
        "info"
    };
    if let Err(e) = Logging::new(filter).format(LogFormat::Json).init() {
        eprintln!("provider-anynines: cannot set up logging: {e}");
        return ExitCode::FAILURE;
    }
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
    // Probes: `/healthz` answers `ok`, `/backend-health` reports each ProviderConfig.
    let probes = Endpoints::new()
        .healthz(HealthChecks::new())
        .router()
        .merge(klutch_a9s::provider::health::router(client.clone()));
    let addr = health::serve(cli.health_probe_bind_address, probes).await?;
    tracing::info!(%addr, "probe server listening");
    let m = metrics.clone();
    let addr = health::serve(
        cli.metrics_bind_address,
        Endpoints::new().metrics(move || m.encode()).router(),
    )
    .await?;
    tracing::info!(%addr, "metrics server listening");
    let options = cli.options();

    if !cli.leader_election {
        let shutdown = async {
            signals::shutdown().await;
        };
        klutch_a9s::provider::run::controllers(client, options, metrics, shutdown).await;
        return Ok(());
    }
    let election = LeaderElection::new(client.clone(), cli.namespace.clone(), LEASE)
        .with_duration(LEASE_DURATION)
        .with_grace(LEASE_GRACE)
        .with_renewal_check(None);
    tracing::info!(lease = LEASE, namespace = %cli.namespace, "waiting for leadership");
    election
        .run(signals::shutdown(), |stop| async move {
            tracing::info!("became leader; starting controllers");
            klutch_a9s::provider::run::controllers(
                client,
                options,
                metrics,
                stop.cancelled_owned(),
            )
            .await;
        })
        .await?;
    Ok(())
}

//! `klutch-testenv`: start real local Kubernetes clusters (and Dex) for development, demos and
//! tests, and stop them again with Ctrl-C.
//!
//! It is a thin command over `klutch_sdk::testenv`; see `docs/testenv.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod demo;

use clap::{Parser, Subcommand};
use klutch_sdk::testenv::{Binaries, DexConfig, TestEnv};
use serde_json::json;

/// Start real local Kubernetes clusters (etcd, kube-apiserver, kube-controller-manager) and
/// optionally Dex, all on 127.0.0.1, and keep them running until interrupted.
#[derive(Debug, Parser)]
#[command(name = "klutch-testenv", version, about, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const LONG_ABOUT: &str = "\
Start real local Kubernetes clusters (etcd, kube-apiserver, kube-controller-manager) and optionally \
Dex, all on 127.0.0.1, and keep them running until interrupted.

The binaries come from testbins/build.sh (built from pinned Go modules) or from $KLUTCH_TESTBIN_DIR. \
Every cluster has its own etcd prefix, certificates and credentials, so they are as isolated as \
clusters on different machines. Ctrl-C (or SIGTERM) stops everything and removes the run directory.

Examples:
  klutch-testenv up --cluster control-plane --cluster app
  klutch-testenv up --crossplane control-plane   # plus Crossplane core on the control plane
  kubectl --kubeconfig <printed path> get namespaces
  klutch-testenv demo      # the whole journey: bind, claim, Crossplane, provider, credentials, SQL";

#[derive(Debug, Subcommand)]
enum Command {
    /// Start clusters, print how to reach them, and run until Ctrl-C or SIGTERM.
    Up(Up),
    /// Run the whole Klutch journey, narrated: a control plane with Crossplane core, the
    /// configuration package and provider-anynines (in front of the a9s development broker on a
    /// real PostgreSQL server from Debian's `postgresql` package; `--fake-broker` for a fake)
    /// offers the claims through the reference backend (OIDC login at Dex); `kubectl bind`
    /// binds PostgresqlInstance and ServiceBinding into an app cluster; an instance is
    /// provisioned through the konnector, Crossplane and the provider, a binding's credentials
    /// Secret arrives in the app cluster, and the demo opens the database with it and prints
    /// `select version()` (never the Secret's values). Then run until Ctrl-C.
    Demo(demo::Demo),
}

#[derive(Debug, clap::Args)]
struct Up {
    /// A cluster to start (repeatable). Names are DNS labels.
    #[arg(long = "cluster", value_name = "NAME", default_values = ["control-plane", "app"])]
    clusters: Vec<String>,

    /// Do not run kube-controller-manager (namespaces then stay Terminating, nothing is
    /// garbage-collected).
    #[arg(long)]
    no_controller_manager: bool,

    /// Also start Dex (OIDC provider; user admin@example.com, password "password"; clients
    /// klutch-backend with redirect URIs http://127.0.0.1:8080/callback and
    /// http://localhost:8080/callback, public klutch-backend-device and klutch-cli).
    #[arg(long)]
    dex: bool,

    /// Another backend /callback URL Dex accepts for klutch-backend (repeatable), e.g. when the
    /// backend listens elsewhere than 127.0.0.1:8080.
    #[arg(long = "dex-redirect-uri", value_name = "URL", requires = "dex")]
    dex_redirect_uris: Vec<String>,

    /// Also run Crossplane core v1.20 and function-patch-and-transform against this cluster
    /// (repeatable; comma-separated in the environment variable): core CRDs applied, namespace
    /// crossplane-system, the function registered over mTLS. No providers are installed: run
    /// one against the printed kubeconfig. Needs `testbins/build.sh crossplane crossplane-core
    /// crossplane-fpt`.
    #[arg(
        long = "crossplane",
        value_name = "CLUSTER",
        env = "KLUTCH_TESTENV_CROSSPLANE",
        value_delimiter = ','
    )]
    crossplane: Vec<String>,

    /// Directory with kube-apiserver, kube-controller-manager, kubectl, etcd and dex (and
    /// crossplane-core, function-patch-and-transform, crossplane-crds/ for --crossplane).
    #[arg(long, env = "KLUTCH_TESTBIN_DIR", value_name = "DIR")]
    bin_dir: Option<PathBuf>,

    /// Write a JSON description of the running environment (URLs, kubeconfigs, pids) here.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,

    /// Copy each cluster's admin kubeconfig to DIR/CLUSTER.kubeconfig (kept after exit).
    #[arg(long, value_name = "DIR")]
    kubeconfig_dir: Option<PathBuf>,

    /// Seconds each component may take to become ready.
    #[arg(long, default_value_t = 90, value_name = "SECONDS")]
    timeout: u64,

    /// Stop after this many seconds instead of waiting for Ctrl-C (for scripts and demos).
    #[arg(long, value_name = "SECONDS")]
    exit_after: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(up) => run_up(up).await,
        Command::Demo(d) => demo::run(d).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("klutch-testenv: {e}");
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run_up(up: Up) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Handlers first: a SIGTERM or Ctrl-C that arrives while the clusters start (or right after
    // "Press Ctrl-C" is printed) must stop them gracefully, not kill this process outright.
    let stop = klutch_sdk::runtime::signals::shutdown();
    let mut builder = TestEnv::builder()
        .controller_manager(!up.no_controller_manager)
        .start_timeout(Duration::from_secs(up.timeout));
    for name in &up.clusters {
        builder = builder.cluster(name);
    }
    if up.dex {
        builder =
            builder.dex(DexConfig::default().with_backend_redirect_uris(&up.dex_redirect_uris));
    }
    for name in &up.crossplane {
        builder = builder.crossplane(name);
    }
    if let Some(dir) = &up.bin_dir {
        builder = builder.binaries(Binaries::from_dir(dir));
    }
    let started = Instant::now();
    eprintln!("klutch-testenv: starting {} ...", up.clusters.join(", "));
    let env = builder.start().await?;
    eprintln!(
        "klutch-testenv: ready in {:.1}s (run directory {})",
        started.elapsed().as_secs_f64(),
        env.dir().display()
    );

    let mut clusters = Vec::new();
    for cluster in env.clusters() {
        let kubeconfig = match &up.kubeconfig_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(format!("{}.kubeconfig", cluster.name()));
                cluster.admin().write_kubeconfig(&path)?;
                path
            }
            None => cluster.kubeconfig_path().to_owned(),
        };
        println!("cluster {:<16} {}", cluster.name(), cluster.url());
        println!(
            "  kubectl --kubeconfig {} get namespaces",
            kubeconfig.display()
        );
        let crossplane = env.crossplane(cluster.name()).map(|c| {
            println!(
                "  crossplane core running (log {}); function {} at {}",
                c.core_log().display(),
                klutch_sdk::testenv::FUNCTION_NAME,
                c.function_endpoint()
            );
            json!({
                "coreLog": c.core_log(),
                "functionLog": c.function_log(),
                "functionEndpoint": c.function_endpoint(),
                "pids": c.pids(),
            })
        });
        clusters.push(json!({
            "name": cluster.name(),
            "server": cluster.url(),
            "kubeconfig": kubeconfig,
            "caPem": cluster.ca_pem(),
            "apiserverLog": cluster.apiserver_log(),
            "pids": cluster.pids(),
            "crossplane": crossplane,
        }));
    }
    if let Some(dex) = env.dex() {
        println!("dex issuer           {}", dex.issuer());
        println!(
            "  login: admin@example.com / password; clients klutch-backend (secret klutch-backend-secret), klutch-backend-device (public, device flow), klutch-cli"
        );
        for client in &dex.config().clients {
            if !client.redirect_uris.is_empty() {
                println!(
                    "  {} redirect URIs: {}",
                    client.id,
                    client.redirect_uris.join(", ")
                );
            }
        }
    }
    if let Ok(kubectl) = Binaries::find().and_then(|b| b.kubectl()) {
        println!(
            "kubectl v1.36 (matching the apiservers): {}",
            kubectl.display()
        );
    }
    if let Some(path) = &up.state {
        let state = json!({
            "dir": env.dir(),
            "etcd": env.etcd_url(),
            "clusters": clusters,
            "dex": env.dex().map(|d| json!({ "issuer": d.issuer() })),
            "pid": std::process::id(),
            "pids": env.pids(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&state)?)?;
    }
    println!("Press Ctrl-C to stop.");

    let deadline = async {
        match up.exit_after {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        signal = stop => eprintln!("klutch-testenv: {}; stopping", stopped_by(signal)),
        () = deadline => eprintln!("klutch-testenv: --exit-after reached; stopping"),
    }
    drop(env);
    if let Some(path) = &up.state {
        let _ = std::fs::remove_file(path);
    }
    eprintln!("klutch-testenv: stopped");
    Ok(())
}

/// How the stop message names a shutdown signal.
fn stopped_by(signal: klutch_sdk::runtime::signals::Signal) -> &'static str {
    match signal {
        klutch_sdk::runtime::signals::Signal::Interrupt => "interrupted",
        _ => "terminated",
    }
}

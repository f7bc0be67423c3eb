//! `kubectl-bind`: bind an API from a Klutch control plane into this cluster.
//!
//! Run it as 'kubectl bind <url>': it logs you in to the binding backend, creates the export requests, installs the konnector and binds the API.

use std::process::ExitCode;

use clap::Parser;

/// Bind an API from a Klutch control plane into this cluster.
#[derive(Debug, Parser)]
#[command(name = "kubectl-bind", version, about, long_about = LONG_ABOUT)]
struct Cli {}

const LONG_ABOUT: &str = "Bind an API from a Klutch control plane into this cluster.

Run it as 'kubectl bind <url>': it logs you in to the binding backend, creates the export requests, installs the konnector and binds the API.";

fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let Cli {} = Cli::parse();
    eprintln!(
        "kubectl-bind {}: this release only answers --help and --version; the component itself is not built yet (see README.md)",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}

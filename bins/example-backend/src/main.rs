//! `example-backend`: the reference Klutch binding backend.
//!
//! It authenticates users through OIDC, decides which APIs they may bind, creates a binding space (namespace, ServiceAccount, kubeconfig) on the control-plane cluster and serves the bind protocol that kubectl bind talks to.

use std::process::ExitCode;

use clap::Parser;

/// The reference Klutch binding backend.
#[derive(Debug, Parser)]
#[command(name = "example-backend", version, about, long_about = LONG_ABOUT)]
struct Cli {}

const LONG_ABOUT: &str = "The reference Klutch binding backend.

It authenticates users through OIDC, decides which APIs they may bind, creates a binding space (namespace, ServiceAccount, kubeconfig) on the control-plane cluster and serves the bind protocol that kubectl bind talks to.";

fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let Cli {} = Cli::parse();
    eprintln!(
        "example-backend {}: this release only answers --help and --version; the component itself is not built yet (see README.md)",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}

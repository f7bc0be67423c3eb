//! `konnector`: the Klutch sync agent that runs in an app cluster.
//!
//! It copies the spec of bound objects up to the control-plane cluster, their status back down, the Secrets and ConfigMaps they claim, and handles deletion and adoption.

use std::process::ExitCode;

use clap::Parser;

/// The Klutch sync agent that runs in an app cluster.
#[derive(Debug, Parser)]
#[command(name = "konnector", version, about, long_about = LONG_ABOUT)]
struct Cli {}

const LONG_ABOUT: &str = "The Klutch sync agent that runs in an app cluster.

It copies the spec of bound objects up to the control-plane cluster, their status back down, the Secrets and ConfigMaps they claim, and handles deletion and adoption.";

fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let Cli {} = Cli::parse();
    eprintln!(
        "konnector {}: this release only answers --help and --version; the component itself is not built yet (see README.md)",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}

//! `provider-anynines`: the Crossplane provider for anynines data services.
//!
//! It turns ServiceInstance, ServiceBinding, Backup and Restore objects into Open Service Broker and Backup Manager calls.

use std::process::ExitCode;

use clap::Parser;

/// The Crossplane provider for anynines data services.
#[derive(Debug, Parser)]
#[command(name = "provider-anynines", version, about, long_about = LONG_ABOUT)]
struct Cli {}

const LONG_ABOUT: &str = "The Crossplane provider for anynines data services.

It turns ServiceInstance, ServiceBinding, Backup and Restore objects into Open Service Broker and Backup Manager calls.";

fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let Cli {} = Cli::parse();
    eprintln!(
        "provider-anynines {}: this release only answers --help and --version; the component itself is not built yet (see README.md)",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}

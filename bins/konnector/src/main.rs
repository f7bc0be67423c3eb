//! `konnector`: the Klutch sync agent that runs in an app cluster. See `konnector --help` and
//! docs/konnector.md; the logic lives in the library part of this crate.

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let cli = konnector::Cli::parse();
    konnector::init_logging(&cli);
    match konnector::run(cli).await {
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

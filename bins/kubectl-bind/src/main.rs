//! `kubectl-bind`: bind an API from a Klutch control plane into this cluster.
//!
//! Run it as `kubectl bind <url>`; see `kubectl bind --help` and docs/kubectl-bind.md.

use std::process::ExitCode;

fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        let io = kubectl_bind::Io::stdio();
        let cancel = io.cancel.clone();
        tokio::spawn(async move {
            // The first Ctrl-C undoes this run's changes and exits; a second one exits at once.
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted twice; changes of this run may be left in the cluster");
                std::process::exit(130);
            }
        });
        kubectl_bind::run(std::env::args_os(), io).await
    });
    // Do not wait for a prompt's blocking read of stdin.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    ExitCode::from(code)
}

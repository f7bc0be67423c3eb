//! Shutdown signals: [`shutdown`] resolves on SIGTERM (what Kubernetes sends to stop a pod) or
//! SIGINT (Ctrl-C).
//!
//! ```no_run
//! # async fn demo() {
//! use klutch_sdk::runtime::signals;
//! let signal = signals::shutdown().await;
//! tracing::info!(%signal, "shutting down");
//! # }
//! ```

use std::future::Future;

/// The signal that asked the process to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// SIGTERM.
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
        })
    }
}

/// A future resolving on the first SIGTERM or SIGINT after this call.
///
/// The handlers are installed when it is called (not when first polled), so a signal that arrives
/// in between is not lost. Call it inside a Tokio runtime. A handler that cannot be installed is
/// logged and never fires.
#[cfg(unix)]
pub fn shutdown() -> impl Future<Output = Signal> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for {name}");
            None
        }
    };
    let term = listen(SignalKind::terminate(), "SIGTERM");
    let int = listen(SignalKind::interrupt(), "SIGINT");
    async move {
        let recv = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = recv(term) => Signal::Terminate,
            () = recv(int) => Signal::Interrupt,
        }
    }
}

/// A future resolving on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown() -> impl Future<Output = Signal> + Send + 'static {
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        Signal::Interrupt
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn sigterm_resolves_the_future() {
        let stop = shutdown();
        let pending = tokio::time::timeout(Duration::from_millis(200), shutdown()).await;
        assert!(pending.is_err(), "no signal yet");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let got = tokio::time::timeout(Duration::from_secs(10), stop)
            .await
            .expect("the signal arrives");
        assert_eq!(got, Signal::Terminate);
        assert_eq!(got.to_string(), "SIGTERM");
    }
}

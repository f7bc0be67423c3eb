//! Process-wide TLS setup.
//!
//! kube and reqwest both use rustls. rustls needs exactly one *crypto provider* per process; when
//! two are compiled in (kube's `ring` and reqwest's default `aws-lc-rs`), the first client that is
//! built panics with "Could not automatically determine the process-level CryptoProvider", and
//! with none compiled in reqwest panics with "No rustls crypto provider is configured".
//!
//! klutch compiles only `ring` and installs it explicitly, once, through
//! [`install_crypto_provider`]. Every klutch binary calls it first thing in `main`, and the test
//! environment calls it before it builds any client, so tests cannot forget it.

use std::sync::OnceLock;

/// Installs rustls' `ring` crypto provider as the process default, once.
///
/// Safe to call any number of times from any thread. If the embedding program already installed
/// a provider of its own, that one is kept.
///
/// ```
/// klutch_sdk::tls::install_crypto_provider();
/// assert!(rustls::crypto::CryptoProvider::get_default().is_some());
/// ```
pub fn install_crypto_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // An error only means that another provider is installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

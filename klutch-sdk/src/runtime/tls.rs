//! Serving https with axum: a [`axum::serve::Listener`] whose connections are TLS streams.
//! Handshakes run in their own tasks (with a timeout), so a slow client cannot stall others.
//!
//! ```no_run
//! use klutch_sdk::runtime::tls::{TlsListener, server_config};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! klutch_sdk::tls::install_crypto_provider();
//! let config = server_config("tls.crt".as_ref(), "tls.key".as_ref())?;
//! let tcp = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello over TLS" }));
//! axum::serve(TlsListener::new(tcp, config)?, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`health::Server::serve_tls`](super::health::Server::serve_tls) wraps both steps.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for `accept`.
const BACKLOG: usize = 64;

/// A TLS setup problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PEM file could not be read.
    #[error("read {what} from {path}")]
    Pem {
        /// Certificate or key.
        what: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the pair.
    #[error("TLS configuration")]
    Config(#[source] rustls::Error),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A server configuration from PEM files: a certificate chain and its private key, no client
/// authentication. The process-wide crypto provider must be installed
/// ([`crate::tls::install_crypto_provider`]).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| Error::Pem {
            what: "certificates",
            path: cert.display().to_string(),
            source,
        })?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| Error::Pem {
        what: "private key",
        path: key.display().to_string(),
        source,
    })?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(Error::Config)?;
    Ok(Arc::new(config))
}

/// Accepts TCP connections and hands out finished TLS streams. The accepting task stops (and
/// closes the port) when the listener is dropped.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Starts accepting on `tcp`, with handshakes limited to [`HANDSHAKE_TIMEOUT`].
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        Self::with_handshake_timeout(tcp, config, HANDSHAKE_TIMEOUT)
    }

    /// Starts accepting on `tcp`; a handshake taking longer than `timeout` is dropped.
    pub fn with_handshake_timeout(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(BACKLOG);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = tcp.accept() => accepted,
                    () = tx.closed() => return,
                };
                let (stream, addr) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %addr, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_problems_name_the_file() {
        let dir = std::env::temp_dir();
        let missing = dir.join("klutch-no-such-cert.pem");
        let err = server_config(&missing, &missing).unwrap_err();
        assert!(
            matches!(&err, Error::Pem { what: "certificates", path, .. } if path.contains("klutch-no-such-cert")),
            "{err:?}"
        );
    }

    // rcgen, which makes the certificate, comes with the `testenv` feature.
    #[cfg(feature = "testenv")]
    #[tokio::test]
    async fn serves_https_and_drops_slow_handshakes() {
        crate::tls::install_crypto_provider();
        let cert = self_signed();
        let dir = std::env::temp_dir().join(format!("klutch-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert_path, &cert.0).unwrap();
        std::fs::write(&key_path, &cert.1).unwrap();
        let config = server_config(&cert_path, &key_path).unwrap();

        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listener =
            TlsListener::with_handshake_timeout(tcp, config, Duration::from_millis(200)).unwrap();
        let addr = axum::serve::Listener::local_addr(&listener).unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
        tokio::spawn(async move { axum::serve(listener, app).await });

        // A client that connects but never says hello is cut off after the timeout.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut idle, &mut buf),
        )
        .await
        .expect("the server closes the idle connection");
        assert!(matches!(read, Ok(0) | Err(_)));

        // A real TLS client gets its answer.
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(cert.0.as_bytes()).unwrap())
            .unwrap();
        let client_config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        tls.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("hello"), "{response}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A self-signed certificate for `localhost`: (PEM certificate, PEM key).
    #[cfg(feature = "testenv")]
    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

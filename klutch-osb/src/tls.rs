//! TLS for the client's own `reqwest::Client`: an explicit rustls configuration on the `ring`
//! provider, so the crate works in processes that never installed a global CryptoProvider.
//! Public so that other clients of the same family (klutch-a9s) share one implementation.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// Builds the rustls client configuration: roots from `ca_bundle_pem` (replacing the system
/// roots) or the system store, or no verification at all when `insecure`.
/// `server_name`, when set, is the name the server certificate is verified against instead of
/// the URL's host.
///
/// ```
/// let config = klutch_osb::tls::client_config(None, false, None).unwrap();
/// let http = reqwest::Client::builder().tls_backend_preconfigured(config).build().unwrap();
/// # drop(http);
/// assert!(klutch_osb::tls::client_config(Some(b"not pem".as_slice()), false, None).is_err());
/// ```
pub fn client_config(
    ca_bundle_pem: Option<&[u8]>,
    insecure: bool,
    server_name: Option<&str>,
) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS: {e}")))?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match ca_bundle_pem {
        Some(pem) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::config(format!("CA bundle is not valid PEM: {e}")))?;
            if certs.is_empty() {
                return Err(Error::config("CA bundle contains no certificate"));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| Error::config(format!("CA bundle certificate rejected: {e}")))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!("no system root certificates found; HTTPS brokers need a CA bundle");
            }
        }
    }
    let Some(name) = server_name else {
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    };
    let name = ServerName::try_from(name.to_owned())
        .map_err(|e| Error::config(format!("server_name_override {name:?}: {e}")))?;
    let inner =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| Error::config(format!("TLS verifier: {e}")))?;
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(OverrideName { inner, name }))
        .with_no_client_auth())
}

/// Verifies the server certificate against a fixed name instead of the URL's host.
#[derive(Debug)]
struct OverrideName {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for OverrideName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any server certificate but still checks handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

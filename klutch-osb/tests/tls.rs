//! TLS with a custom CA bundle, in a process that never installs a global rustls
//! CryptoProvider (this test binary does not): the client must bring its own ring provider.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use klutch_osb::{Client, Error};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

struct Pki {
    ca_pem: String,
    leaf_der: rustls::pki_types::CertificateDer<'static>,
    leaf_key: Vec<u8>,
}

fn pki() -> Pki {
    pki_for(&["localhost", "127.0.0.1"])
}

fn pki_for(names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf_der: leaf.der().clone(),
        leaf_key: leaf_key.serialize_der(),
    }
}

/// A one-thread HTTPS server answering every request with an empty catalog.
fn serve(p: &Pki) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![p.leaf_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.leaf_key.clone())),
            )
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = r#"{"services":[]}"#;
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

#[tokio::test]
async fn custom_ca_bundle_without_a_global_crypto_provider() {
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "this test needs a process without one"
    );
    let p = pki();
    let port = serve(&p);
    let url = format!("https://127.0.0.1:{port}");

    let trusted = Client::builder(&url)
        .ca_bundle_pem(p.ca_pem.as_bytes().to_vec())
        .build()
        .unwrap();
    let catalog = trusted
        .catalog()
        .await
        .expect("TLS with the custom CA works")
        .outcome;
    assert!(catalog.services.is_empty());

    // System roots do not know our CA; another CA is rejected as well.
    let system = Client::builder(&url).build().unwrap();
    let e = system.catalog().await.unwrap_err();
    assert!(
        matches!(e, Error::Connect { .. } | Error::Transport { .. }),
        "{e:?}"
    );
    let other = pki();
    let wrong = Client::builder(&url)
        .ca_bundle_pem(other.ca_pem.into_bytes())
        .build()
        .unwrap();
    assert!(wrong.catalog().await.is_err());

    // insecure_skip_verify accepts any certificate.
    let insecure = Client::builder(&url)
        .insecure_skip_verify(true)
        .build()
        .unwrap();
    insecure.catalog().await.expect("no verification");
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "the client never installed a global provider"
    );
}

#[tokio::test]
async fn server_name_override_verifies_against_another_name() {
    let p = pki_for(&["broker.internal"]);
    let port = serve(&p);
    let url = format!("https://127.0.0.1:{port}");
    let plain = Client::builder(&url)
        .ca_bundle_pem(p.ca_pem.as_bytes().to_vec())
        .build()
        .unwrap();
    assert!(
        plain.catalog().await.is_err(),
        "the certificate is not valid for 127.0.0.1"
    );
    let named = Client::builder(&url)
        .ca_bundle_pem(p.ca_pem.as_bytes().to_vec())
        .server_name_override("broker.internal")
        .build()
        .unwrap();
    named
        .catalog()
        .await
        .expect("verified against broker.internal");
    let wrong = Client::builder(&url)
        .ca_bundle_pem(p.ca_pem.as_bytes().to_vec())
        .server_name_override("other.internal")
        .build()
        .unwrap();
    assert!(wrong.catalog().await.is_err());
}

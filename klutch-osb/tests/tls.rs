//! TLS with a custom CA bundle, in a process that never installs a global rustls
//! CryptoProvider (this test binary does not): the client must bring its own ring provider.

mod common;

use common::tls::{pki, pki_for, serve};
use klutch_osb::{Client, Error};

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

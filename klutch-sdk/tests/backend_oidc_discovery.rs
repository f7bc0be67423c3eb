//! OIDC discovery against an IdP double (wiremock, an extra layer besides the real-Dex tests):
//! unreachable or broken providers give a typed error naming the issuer, and a provider without a
//! device endpoint is not advertised as supporting the device flow.

use klutch_sdk::backend::oidc::Error;
use klutch_sdk::backend::{Authenticator as _, OidcAuthenticator, OidcConfig};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config(issuer: &str) -> OidcConfig {
    OidcConfig {
        issuer_url: issuer.into(),
        client_id: "c".into(),
        client_secret: "s".to_owned().into(),
        callback_url: "http://127.0.0.1:1/callback".into(),
        ca_pem: None,
    }
}

#[tokio::test]
async fn broken_providers_give_typed_errors() {
    let idp = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&idp)
        .await;
    let err = OidcAuthenticator::discover(config(&idp.uri()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Discovery { ref issuer, .. } if issuer == &idp.uri()),
        "{err:?}"
    );
    assert!(err.to_string().contains("discover the OpenID provider"));

    let err = OidcAuthenticator::discover(config("not a url"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Url {
                flag: "--oidc-issuer-url",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn providers_without_a_device_endpoint_offer_no_device_flow() {
    let idp = MockServer::start().await;
    let issuer = idp.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })))
        .mount(&idp)
        .await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "keys": [] })))
        .mount(&idp)
        .await;
    let auth = OidcAuthenticator::discover(config(&issuer))
        .await
        .expect("discovery");
    assert!(!auth.supports_device_flow());
    assert!(matches!(
        auth.start_device().await,
        Err(klutch_sdk::backend::AuthError::Unsupported)
    ));
    let start = auth
        .start_login("st4te", "http://127.0.0.1:1/callback")
        .await
        .unwrap();
    let url = url::Url::parse(&start.location).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st4te");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], "openid profile email offline_access");
    assert!(q.contains_key("nonce"));
    assert!(
        !start.pending.contains(&q["code_challenge"]),
        "the verifier, not the challenge, stays behind"
    );
}

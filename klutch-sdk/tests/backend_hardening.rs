//! The backend's HTTP hardening against real Dex and a real kube-apiserver: half-sent requests
//! are closed by the listener (header and body read timeouts, a connection limit), the login
//! endpoints are rate limited per client, a TLS backend keeps `Secure` on its cookies whatever
//! `X-Forwarded-Proto` a client sends, error texts come with `nosniff`; ID tokens MACed with the
//! client secret (`HS256`), issued in the future or without `sub` are refused (minted by a tiny
//! OpenID provider in this test that advertises `HS256`); and the test environment's default
//! Dex accepts the browser login of a backend on the default address.

mod backend_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Redirect;
use axum::routing::{get, post};
use backend_common::{CLIENT_ID, CLIENT_SECRET, PASSWORD, fixture};
use base64::Engine as _;
use klutch_sdk::backend::server::LoginRateLimit;
use klutch_sdk::backend::{
    BindingSpaceConfig, BindingSpaces, ExternalCluster, OidcAuthenticator, OidcConfig, Server,
    ServerConfig, SessionKeys, TemplateBackend, TemplateBackendConfig,
};
use klutch_sdk::runtime::health::{self, ServeOptions};
use klutch_sdk::testenv::browser::Browser;
use klutch_sdk::testenv::{DEFAULT_BACKEND_REDIRECT_URIS, DexConfig, TestEnv};
use ring::signature::KeyPair as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A reference backend on the fixture's cluster, logging in at `issuer` with `client`.
async fn backend_router(
    issuer: &str,
    client: (&str, &str),
    callback: &str,
    config: impl FnOnce(&mut ServerConfig),
) -> axum::Router {
    let f = fixture().await;
    let admin = f.admin().await;
    let auth = OidcAuthenticator::discover(OidcConfig {
        issuer_url: issuer.to_owned(),
        client_id: client.0.into(),
        client_secret: client.1.to_owned().into(),
        callback_url: callback.to_owned(),
        ca_pem: None,
    })
    .await
    .expect("discover the IdP");
    let backend = TemplateBackend::start(
        admin.clone(),
        auth,
        TemplateBackendConfig {
            pretty_name: "Hardened".into(),
            consumer_scope: klutch_sdk::api::export::Scope::Namespaced,
            cluster_scoped_isolation: klutch_sdk::api::export::ClusterScopedIsolation::Prefixed,
        },
    )
    .await
    .unwrap();
    let spaces = Arc::new(BindingSpaces::new(
        admin,
        BindingSpaceConfig {
            namespace_prefix: "hard".into(),
            pretty_name: "Hardened".into(),
            external: ExternalCluster {
                server: f.env["provider"].url().into(),
                ca_pem: None,
                server_name: None,
            },
            token_timeout: Duration::from_secs(30),
        },
    ));
    let mut server_config = ServerConfig::new(SessionKeys::generate());
    server_config.callback_url = Some(callback.to_owned());
    config(&mut server_config);
    Server::new(backend, spaces, server_config).router()
}

/// Reads until the server closes the connection; the bytes it answered.
async fn until_closed(mut stream: tokio::net::TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn half_sent_requests_are_closed_and_connections_limited() {
    let f = fixture().await;
    let issuer = f.env.dex().unwrap().issuer().to_owned();
    let server = health::Server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    let callback = format!("http://{addr}/callback");
    let router = backend_router(&issuer, (CLIENT_ID, CLIENT_SECRET), &callback, |_| {}).await;
    let options = ServeOptions {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        max_connections: 40,
    };
    tokio::spawn(server.serve_with(router, options, None, std::future::pending::<()>()));

    // 150 clients send half a request's headers and then nothing.
    let mut held = Vec::new();
    for _ in 0..150 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /export HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
            .await
            .unwrap();
        held.push(tokio::spawn(until_closed(s)));
    }
    // One client sends the headers of a POST and half its body.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /device/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ndevice_code=abc",
    )
    .await
    .unwrap();
    let half_body = tokio::spawn(until_closed(s));

    // Each is closed by the server; the deadline only keeps a broken server from hanging CI.
    let all = async {
        let mut closed = 0;
        for h in held {
            let answer = h.await.unwrap();
            assert!(
                answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
                "{}",
                String::from_utf8_lossy(&answer)
            );
            closed += 1;
        }
        closed
    };
    let closed = tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("the server holds half-sent requests open");
    assert_eq!(closed, 150);
    let answer = tokio::time::timeout(Duration::from_secs(60), half_body)
        .await
        .expect("the server holds a half-sent body open")
        .unwrap();
    // The body read fails at the timeout: the form extractor answers 400 (a handler reading the
    // body itself gets 408) and the connection is closed.
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // The server still answers whole requests.
    let resp = reqwest::get(format!("http://{addr}/export")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn login_endpoints_are_rate_limited_per_client() {
    let f = fixture().await;
    let issuer = f.env.dex().unwrap().issuer().to_owned();
    let server = health::Server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    let callback = format!("http://{addr}/callback");
    let router = backend_router(&issuer, (CLIENT_ID, CLIENT_SECRET), &callback, |c| {
        c.login_rate_limit = Some(LoginRateLimit::new(1, 5));
    })
    .await;
    tokio::spawn(server.serve_with(
        router,
        ServeOptions::default(),
        None,
        std::future::pending::<()>(),
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = format!("http://{addr}/authorize?p=40000&s=abc&c=def");
    for i in 0..5 {
        let resp = http.get(&authorize).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 302, "request {i} within the burst");
    }
    for path in ["/authorize?p=40000&s=abc&c=def", "/callback?code=x&state=y"] {
        let resp = http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 429, "{path}");
        assert!(resp.headers().contains_key("retry-after"));
    }
    let resp = http
        .post(format!("http://{addr}/device/token"))
        .form(&[("device_code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    // Not a login endpoint: not limited.
    let resp = http
        .get(format!("http://{addr}/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn tls_keeps_cookies_secure_and_error_texts_are_not_sniffed() {
    klutch_sdk::tls::install_crypto_provider();
    let f = fixture().await;
    let issuer = f.env.dex().unwrap().issuer().to_owned();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls = klutch_sdk::runtime::tls::server_config(&cert_path, &key_path).unwrap();
    let server = health::Server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    let callback = format!("https://{addr}/callback");
    let router = backend_router(&issuer, (CLIENT_ID, CLIENT_SECRET), &callback, |c| {
        c.tls = true;
        c.trust_forwarded_headers = true;
    })
    .await;
    tokio::spawn(server.serve_with(
        router,
        ServeOptions::default(),
        Some(tls),
        std::future::pending::<()>(),
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only([reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let resp = http
        .get(format!("https://{addr}/authorize?p=40000&s=abc&c=def"))
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "over TLS: {cookie}");
    let export: serde_json::Value = http
        .get(format!("https://{addr}/export"))
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let authenticated = export["authenticationMethods"][0]["oauth2CodeGrant"]["authenticatedURL"]
        .as_str()
        .unwrap();
    assert!(authenticated.starts_with("https://"), "{authenticated}");

    // An error text that echoes input is plain text the browser must not sniff.
    let resp = http
        .get(format!(
            "https://{addr}/callback?error=%3Cscript%3Ealert(1)%3C/script%3E&error_description=x"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let resp = http
        .get(format!("https://{addr}/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A minimal OpenID provider that advertises `HS256` besides `EdDSA`, and whose token endpoint
/// returns the ID token the test asks for (the mode travels as `login_hint`).
#[derive(Clone)]
struct FakeIdp {
    issuer: String,
    key: Arc<ring::signature::Ed25519KeyPair>,
    nonce: Arc<Mutex<String>>,
}

const FAKE_SECRET: &str = "fake-client-secret-shared-with-the-idp";

impl FakeIdp {
    fn mint(&self, mode: &str) -> String {
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let mut claims = serde_json::json!({
            "iss": self.issuer, "sub": "mallory", "aud": "fake-client",
            "iat": now, "exp": now + 600, "nonce": *self.nonce.lock().unwrap(),
        });
        match mode {
            "future" => {
                claims["iat"] = (now + 3600).into();
                claims["exp"] = (now + 7200).into();
            }
            "nosub" => claims["sub"] = "".into(),
            _ => {}
        }
        let alg = if mode == "hs256" { "HS256" } else { "EdDSA" };
        let header = serde_json::json!({ "alg": alg, "kid": "k1", "typ": "JWT" });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = if mode == "hs256" {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, FAKE_SECRET.as_bytes());
            b64(ring::hmac::sign(&key, input.as_bytes()).as_ref())
        } else {
            b64(self.key.sign(input.as_bytes()).as_ref())
        };
        format!("{input}.{signature}")
    }
}

async fn start_fake_idp() -> FakeIdp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let idp = FakeIdp {
        issuer: issuer.clone(),
        key: Arc::new(ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()),
        nonce: Arc::new(Mutex::new(String::new())),
    };
    let discovery = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256", "EdDSA"],
    });
    let jwks = serde_json::json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": "k1",
        "x": b64(idp.key.public_key().as_ref()),
    }]});
    type Params = Query<std::collections::HashMap<String, String>>;
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
        .route("/jwks", get(move || async move { axum::Json(jwks) }))
        .route(
            "/auth",
            get(|State(idp): State<FakeIdp>, Query(q): Params| async move {
                *idp.nonce.lock().unwrap() = q["nonce"].clone();
                let mut target = url::Url::parse(&q["redirect_uri"]).unwrap();
                target
                    .query_pairs_mut()
                    .append_pair("code", &q["login_hint"])
                    .append_pair("state", &q["state"]);
                Redirect::to(target.as_str())
            }),
        )
        .route(
            "/token",
            post(|State(idp): State<FakeIdp>, axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| async move {
                axum::Json(serde_json::json!({
                    "access_token": "at", "token_type": "Bearer", "expires_in": 600,
                    "id_token": idp.mint(&form["code"]),
                }))
            }),
        )
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    idp
}

#[tokio::test]
async fn mac_signed_future_and_subjectless_id_tokens_are_refused() {
    let idp = start_fake_idp().await;
    let server = health::Server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    let base = format!("http://{addr}");
    let router = backend_router(
        &idp.issuer,
        ("fake-client", FAKE_SECRET),
        &format!("{base}/callback"),
        |_| {},
    )
    .await;
    tokio::spawn(server.serve_with(
        router,
        ServeOptions::default(),
        None,
        std::future::pending::<()>(),
    ));
    let login = |mode: &'static str| {
        let base = base.clone();
        async move {
            let mut b = Browser::new().unwrap();
            let sid = klutch_sdk::backend::state::random_token(22);
            let start = b
                .get(&format!("{base}/authorize?p=40000&s={sid}&c=cidHard"))
                .await
                .unwrap();
            assert_eq!(start.status, 302);
            let to_idp = format!("{}&login_hint={mode}", start.location.unwrap());
            let back = b.get(&to_idp).await.unwrap().location.unwrap();
            b.get(&back).await.unwrap()
        }
    };
    let mut accepted = Vec::new();
    for mode in ["hs256", "future", "nosub"] {
        let page = login(mode).await;
        if page.status != 401 || page.headers.get("set-cookie").is_some() {
            accepted.push(format!("{mode}: {} {}", page.status, page.body));
            continue;
        }
        assert!(
            page.body.contains("ID token rejected"),
            "{mode}: {}",
            page.body
        );
    }
    assert!(accepted.is_empty(), "ID tokens accepted: {accepted:#?}");
    // The same IdP's genuine EdDSA token logs in, so the refusals are the tokens' fault.
    let page = login("genuine").await;
    assert_eq!(page.status, 302, "genuine: {}", page.body);
}

#[tokio::test]
async fn default_dex_accepts_the_browser_login_of_a_backend_on_the_default_address() {
    let env = TestEnv::builder()
        .dex(DexConfig::default())
        .start()
        .await
        .expect("start Dex");
    let dex = env.dex().unwrap();
    for redirect in DEFAULT_BACKEND_REDIRECT_URIS {
        let mut b = Browser::new().unwrap();
        let mut auth = url::Url::parse(&format!("{}/auth", dex.issuer())).unwrap();
        auth.query_pairs_mut()
            .append_pair("client_id", "klutch-backend")
            .append_pair("redirect_uri", redirect)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email")
            .append_pair("state", "s1");
        let start = b.get(auth.as_str()).await.unwrap();
        assert!(
            !start.body.contains("Unregistered redirect_uri"),
            "{redirect}: {}",
            start.body
        );
        let callback = b
            .login_at_dex(start, "admin@example.com", PASSWORD, redirect)
            .await
            .unwrap_or_else(|e| panic!("{redirect}: {e}"));
        assert!(
            callback.starts_with(redirect) && callback.contains("code="),
            "{callback}"
        );
    }
}

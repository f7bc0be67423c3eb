//! Every attack of the security list is refused with a clear 4xx and creates nothing: tampered
//! state, replayed or foreign callbacks, tampered cookies, IdP errors, bad redirect targets (real
//! Dex), and forged, unsigned, expired, wrong-audience, wrong-issuer and wrong-nonce ID tokens
//! (minted by a tiny OpenID provider in this test, signed with its own Ed25519 key).

mod backend_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use backend_common::fixture;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use klutch_sdk::api::wellknown::IDENTITY_ANNOTATION;
use klutch_sdk::api::wire::{decode_base64, encode_base64_url};
use klutch_sdk::backend::{
    BindingSpaceConfig, BindingSpaces, ExternalCluster, OidcAuthenticator, OidcConfig, Server,
    ServerConfig, SessionKeys, TemplateBackend, TemplateBackendConfig,
};
use klutch_sdk::testenv::browser::{Browser, query_param};
use kube::ResourceExt as _;
use kube::api::{Api, ListParams};
use ring::signature::KeyPair as _;

/// Cluster namespaces annotated with Klutch's identity `<sub>#<cid>` (of any issuer).
async fn spaces_of(client: &kube::Client, identity: &str) -> usize {
    Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|ns| {
            ns.annotations()
                .get(IDENTITY_ANNOTATION)
                .map(String::as_str)
                == Some(identity)
        })
        .count()
}

/// `/authorize` and the Dex login for a fresh sid; returns the browser and the callback URL.
async fn login_until_callback(base: &str, email: &str, cid: &str) -> (Browser, String, String) {
    let mut b = Browser::new().unwrap();
    let sid = klutch_sdk::backend::state::random_token(22);
    let start = b
        .get(&format!("{base}/authorize?p=40000&s={sid}&c={cid}"))
        .await
        .unwrap();
    assert_eq!(start.status, 302, "{}", start.body);
    let callback = b
        .login_at_dex(
            start,
            email,
            backend_common::PASSWORD,
            &format!("{base}/callback"),
        )
        .await
        .unwrap();
    (b, callback, sid)
}

#[tokio::test]
async fn tampered_state_replayed_callbacks_and_tampered_cookies_are_refused() {
    let f = fixture().await;
    let admin = f.admin().await;

    // Tampered state: change the redirect target, keep the signature.
    let (mut b, callback, _) = login_until_callback(&f.base, "alice@example.com", "cidSec1").await;
    let state = query_param(&callback, "state").unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_slice(&decode_base64(&state, "state").unwrap()).unwrap();
    doc["redirectURL"] = "http://localhost:1/steal".into();
    let forged = encode_base64_url(doc.to_string().as_bytes());
    let mut url = url::Url::parse(&callback).unwrap();
    let code = query_param(&callback, "code").unwrap();
    url.query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", &forged);
    let page = b.get(url.as_str()).await.unwrap();
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(page.body, "state signature is invalid");
    assert!(page.headers.get("set-cookie").is_none());

    // Unsigned upstream-style state.
    let upstream = encode_base64_url(
        br#"{"redirectURL":"http://localhost:1/callback","sid":"abc","cid":"def"}"#,
    );
    let page = b
        .get(&format!("{}/callback?code={code}&state={upstream}", f.base))
        .await
        .unwrap();
    assert_eq!(page.status, 400, "{}", page.body);

    // The genuine callback from another browser (no pending-login cookie) is refused...
    let mut other = Browser::new().unwrap();
    let page = other.get(&callback).await.unwrap();
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("no login in progress"), "{}", page.body);
    // ...while the browser that started the login gets in, once.
    let pending_cookies = b.cookies(&f.base).unwrap();
    let ok = b.get(&callback).await.unwrap();
    assert_eq!(ok.status, 302, "{}", ok.body);
    let replay = b.get(&callback).await.unwrap();
    assert_eq!(
        replay.status, 400,
        "replay in the same browser: {}",
        replay.body
    );
    // A replay carrying the old pending cookie reaches the IdP, which refuses the spent code.
    let mut thief = Browser::new().unwrap();
    thief.set_cookies(&f.base, pending_cookies).unwrap();
    let replay = thief.get(&callback).await.unwrap();
    assert_eq!(
        replay.status, 401,
        "replay with stolen cookie: {}",
        replay.body
    );
    assert!(replay.body.contains("refused the code"), "{}", replay.body);
    assert!(replay.headers.get("set-cookie").is_none());

    // IdP errors surface as 400 with their text.
    let page = b
        .get(&format!(
            "{}/callback?error=access_denied&error_description=nope",
            f.base
        ))
        .await
        .unwrap();
    assert_eq!(
        (page.status, page.body.as_str()),
        (400, "access_denied: nope")
    );

    // Tampered, moved and missing cookies: 401, and no binding space appears.
    let (mut b, callback, sid) = login_until_callback(&f.base, "bob@example.com", "cidSec2").await;
    assert_eq!(b.get(&callback).await.unwrap().status, 302);
    let name = format!("klutch-bind-{sid}");
    let genuine = b.cookie(&f.base, &name).unwrap().unwrap();
    let mut bytes = genuine.clone().into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    b.set_cookie(&f.base, &name, &String::from_utf8(bytes).unwrap())
        .unwrap();
    let bind = format!(
        "{}/bind?s={sid}&resource=mangodbs&group=mangodb.com",
        f.base
    );
    for url in [format!("{}/resources?s={sid}", f.base), bind.clone()] {
        let page = b.get(&url).await.unwrap();
        assert_eq!(page.status, 401, "{url}: {}", page.body);
    }
    // The genuine value under another sid's name does not open either.
    let mut moved = Browser::new().unwrap();
    moved
        .set_cookie(&f.base, "klutch-bind-othersid", &genuine)
        .unwrap();
    let page = moved
        .get(&format!(
            "{}/bind?s=othersid&resource=mangodbs&group=mangodb.com",
            f.base
        ))
        .await
        .unwrap();
    assert_eq!(page.status, 401);
    let page = Browser::new()
        .unwrap()
        .get(&format!("{}/resources?s={sid}", f.base))
        .await
        .unwrap();
    assert_eq!(page.status, 401, "no cookie: {}", page.body);
    // Nothing was created for this cid (the genuine cookie still works afterwards).
    let claims_sub = {
        let dex = f.env.dex().unwrap();
        let tokens = dex
            .password_grant(
                backend_common::CLIENT_ID,
                "bob@example.com",
                backend_common::PASSWORD,
            )
            .await
            .unwrap();
        tokens.id_token_claims().unwrap()["sub"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(spaces_of(&admin, &format!("{claims_sub}#cidSec2")).await, 0);
    b.set_cookie(&f.base, &name, &genuine).unwrap();
    let page = b.get(&bind).await.unwrap();
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(spaces_of(&admin, &format!("{claims_sub}#cidSec2")).await, 1);

    // Bad /authorize input.
    let mut b = Browser::new().unwrap();
    for (query, text) in [
        (
            "u=http://evil.example.com/callback&s=abc&c=def",
            "redirect URL not allowed",
        ),
        ("s=abc&c=def", "missing redirect url or port"),
        ("p=1234&c=def", "missing or invalid session id"),
        ("p=1234&s=a-b&c=def", "missing or invalid session id"),
        ("p=1234&s=abc", "missing or invalid cluster id"),
    ] {
        let page = b
            .get(&format!("{}/authorize?{query}", f.base))
            .await
            .unwrap();
        assert_eq!(page.status, 400, "{query}");
        assert!(page.body.contains(text), "{query}: {}", page.body);
    }
    // A resource without a template is refused before anything is created.
    let (mut b, callback, sid) =
        login_until_callback(&f.base, "carol@example.com", "cidSec3").await;
    assert_eq!(b.get(&callback).await.unwrap().status, 302);
    let page = b
        .get(&format!("{}/bind?s={sid}&resource=secrets&group=", f.base))
        .await
        .unwrap();
    assert_eq!(page.status, 400, "{}", page.body);
}

/// A minimal OpenID provider whose token endpoint returns whatever ID token the test asks for.
#[derive(Clone)]
struct FakeIdp {
    issuer: String,
    key: Arc<ring::signature::Ed25519KeyPair>,
    nonce: Arc<Mutex<String>>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn ed25519_key() -> ring::signature::Ed25519KeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

impl FakeIdp {
    fn mint(&self, mode: &str) -> String {
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let mut claims = serde_json::json!({
            "iss": self.issuer, "sub": "mallory", "aud": "fake-client",
            "iat": now, "exp": now + 600, "nonce": *self.nonce.lock().unwrap(),
        });
        let mut alg = "EdDSA";
        match mode {
            "expired" => {
                claims["iat"] = (now - 7200).into();
                claims["exp"] = (now - 3600).into();
            }
            "audience" => claims["aud"] = "someone-else".into(),
            "issuer" => claims["iss"] = "http://127.0.0.1:1/other".into(),
            "nonce" => claims["nonce"] = "not-the-nonce".into(),
            "unsigned" => alg = "none",
            _ => {}
        }
        let header = serde_json::json!({ "alg": alg, "kid": "k1", "typ": "JWT" });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match mode {
            "unsigned" => String::new(),
            "forged" => b64(ed25519_key().sign(signing_input.as_bytes()).as_ref()),
            _ => b64(self.key.sign(signing_input.as_bytes()).as_ref()),
        };
        format!("{signing_input}.{signature}")
    }
}

async fn start_fake_idp() -> FakeIdp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let idp = FakeIdp {
        issuer: issuer.clone(),
        key: Arc::new(ed25519_key()),
        nonce: Arc::new(Mutex::new(String::new())),
    };
    let discovery = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
    });
    let jwks = serde_json::json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": "k1",
        "x": b64(idp.key.public_key().as_ref()),
    }]});
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
        .route("/jwks", get(move || async move { axum::Json(jwks) }))
        .route(
            "/auth",
            get(|State(idp): State<FakeIdp>, Query(q): Query<std::collections::HashMap<String, String>>| async move {
                *idp.nonce.lock().unwrap() = q["nonce"].clone();
                assert_eq!(q["code_challenge_method"], "S256", "PKCE S256 is used");
                let mode = q["login_hint"].clone();
                let mut target = url::Url::parse(&q["redirect_uri"]).unwrap();
                target.query_pairs_mut().append_pair("code", &mode).append_pair("state", &q["state"]);
                Redirect::to(target.as_str())
            }),
        )
        .route(
            "/token",
            post(|State(idp): State<FakeIdp>, axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| async move {
                assert!(form.contains_key("code_verifier"), "PKCE verifier sent");
                axum::Json(serde_json::json!({
                    "access_token": "at", "token_type": "Bearer", "expires_in": 600,
                    "id_token": idp.mint(&form["code"]),
                }))
                .into_response()
            }),
        )
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    idp
}

#[tokio::test]
async fn forged_unsigned_expired_and_misdirected_id_tokens_are_refused() {
    let f = fixture().await;
    let admin = f.admin().await;
    let idp = start_fake_idp().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let auth = OidcAuthenticator::discover(OidcConfig {
        issuer_url: idp.issuer.clone(),
        client_id: "fake-client".into(),
        client_secret: "s".to_owned().into(),
        callback_url: format!("{base}/callback"),
        ca_pem: None,
    })
    .await
    .expect("discover the fake IdP");
    let backend = TemplateBackend::start(
        admin.clone(),
        auth,
        TemplateBackendConfig {
            pretty_name: "Fake".into(),
            consumer_scope: klutch_sdk::api::export::Scope::Namespaced,
            cluster_scoped_isolation: klutch_sdk::api::export::ClusterScopedIsolation::Prefixed,
        },
    )
    .await
    .unwrap();
    let cluster = &f.env["provider"];
    let spaces = Arc::new(BindingSpaces::new(
        admin.clone(),
        BindingSpaceConfig {
            namespace_prefix: "fake".into(),
            pretty_name: "Fake".into(),
            external: ExternalCluster {
                server: cluster.url().into(),
                ca_pem: None,
                server_name: None,
            },
            token_timeout: Duration::from_secs(30),
        },
    ));
    let router = Server::new(backend, spaces, ServerConfig::new(SessionKeys::generate())).router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let login = |mode: &'static str| {
        let base = base.clone();
        async move {
            let mut b = Browser::new().unwrap();
            let sid = klutch_sdk::backend::state::random_token(22);
            let start = b
                .get(&format!("{base}/authorize?p=40000&s={sid}&c=cidFake"))
                .await
                .unwrap();
            assert_eq!(start.status, 302);
            // The mode travels as login_hint, which the fake IdP echoes as the code.
            let to_idp = format!("{}&login_hint={mode}", start.location.unwrap());
            let back = b.get(&to_idp).await.unwrap().location.unwrap();
            (b.get(&back).await.unwrap(), b, sid)
        }
    };
    for mode in [
        "forged", "unsigned", "expired", "audience", "issuer", "nonce",
    ] {
        let (page, _, _) = login(mode).await;
        assert_eq!(page.status, 401, "{mode}: {}", page.body);
        assert!(
            page.body.contains("ID token rejected"),
            "{mode}: {}",
            page.body
        );
        assert!(
            page.headers.get("set-cookie").is_none(),
            "{mode}: no session"
        );
    }
    // The same IdP with a genuine token logs in, so the refusals above are the tokens' fault.
    let (page, mut b, sid) = login("genuine").await;
    assert_eq!(page.status, 302, "genuine: {}", page.body);
    assert_eq!(
        spaces_of(&admin, "mallory#cidFake").await,
        0,
        "nothing created by logins"
    );
    let bound = b
        .get(&format!(
            "{base}/bind?s={sid}&resource=mangodbs&group=mangodb.com"
        ))
        .await
        .unwrap();
    assert_eq!(bound.status, 302, "{}", bound.body);
    assert_eq!(spaces_of(&admin, "mallory#cidFake").await, 1);
}

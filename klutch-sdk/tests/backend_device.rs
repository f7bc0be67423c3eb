//! The non-interactive (device authorization) binding flow against real Dex and a real
//! kube-apiserver, exactly as `kubectl bind --non-interactive` drives it: `/device/authorize`,
//! polling `/device/token`, the user approving at Dex's `/device` page, then `/resources` and
//! `/bind` as JSON with the session cookie. The device flow runs with a public client (the
//! confidential secret never reaches Dex, nor a browser redirect), shows the backend's consent
//! page first, binds the session to the cid and API it was started for, and is redeemed once.

mod backend_common;

use backend_common::{PASSWORD, eventually, fixture, tenant_client};
use klutch_sdk::api::wire::BindingResponse;
use klutch_sdk::testenv::browser::{Browser, form_action};

async fn post(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let resp = http.post(url).form(form).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// The user's side: open the verification page, type the code, log in at Dex. Every redirect
/// Dex sends the browser is checked for the confidential client secret.
async fn approve_at_dex(issuer: &str, verification_uri: &str, user_code: &str, email: &str) {
    let mut b = Browser::new().unwrap();
    let page = b.get(verification_uri).await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    let action = url::Url::parse(verification_uri)
        .unwrap()
        .join(&form_action(&page.body).expect("code form"))
        .unwrap();
    let mut page = b
        .post_form(action.as_str(), &[("user_code", user_code)])
        .await
        .unwrap();
    for _ in 0..20 {
        if let Some(raw) = page.raw_location() {
            // Dex 2.45.1 copies the device request's secret into this redirect: it must be empty.
            let secret = url::Url::parse("http://x")
                .unwrap()
                .join(raw)
                .ok()
                .and_then(|u| {
                    u.query_pairs()
                        .find(|(k, _)| k == "client_secret")
                        .map(|(_, v)| v.into_owned())
                })
                .unwrap_or_default();
            assert!(
                secret.is_empty() && !raw.contains(backend_common::CLIENT_SECRET),
                "Dex put the client secret into a browser redirect: {raw}"
            );
        }
        if let Some(mut loc) = page.location.clone() {
            // The test environment registers Dex's device callback as the relative
            // `/device/callback`, which this Dex redirects to literally, outside its `/dex`
            // prefix; a browser would hit the same path. Resolve it under the issuer, where
            // Dex serves it.
            let raw = page.raw_location().unwrap_or_default();
            if raw.starts_with("/device/callback") {
                loc = format!("{issuer}{raw}");
            }
            page = b.get(&loc).await.unwrap();
            continue;
        }
        assert_eq!(page.status, 200, "{}: {}", page.url, page.body);
        if page.url.contains("/device/callback") {
            return;
        }
        let action = url::Url::parse(&page.url)
            .unwrap()
            .join(
                &form_action(&page.body)
                    .unwrap_or_else(|| panic!("no form on {}: {}", page.url, page.body)),
            )
            .unwrap();
        page = b
            .post_form(action.as_str(), &[("login", email), ("password", PASSWORD)])
            .await
            .unwrap();
    }
    panic!("Dex never reached /device/callback");
}

/// A second backend replica: same keys, same Dex clients, same cluster, its own memory.
async fn second_replica(f: &backend_common::Fixture) -> String {
    use klutch_sdk::backend::*;
    let admin = f.admin().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let auth = OidcAuthenticator::discover_with(
        OidcConfig {
            issuer_url: f.env.dex().unwrap().issuer().to_owned(),
            client_id: backend_common::CLIENT_ID.into(),
            client_secret: backend_common::CLIENT_SECRET.to_owned().into(),
            callback_url: format!("{}/callback", f.base),
            ca_pem: None,
        },
        OidcOptions {
            device_client_id: Some(backend_common::DEVICE_CLIENT_ID.into()),
            ..OidcOptions::default()
        },
    )
    .await
    .unwrap();
    let backend = TemplateBackend::start(
        admin.clone(),
        auth,
        TemplateBackendConfig {
            pretty_name: "Test Provider".into(),
            consumer_scope: klutch_sdk::api::export::Scope::Namespaced,
            cluster_scoped_isolation: klutch_sdk::api::export::ClusterScopedIsolation::Prefixed,
        },
    )
    .await
    .unwrap();
    let spaces = std::sync::Arc::new(BindingSpaces::new(
        admin.clone(),
        BindingSpaceConfig::new(
            "Test Provider",
            ExternalCluster {
                server: f.env["provider"].url().to_owned(),
                ca_pem: None,
                server_name: None,
            },
        ),
    ));
    let router = Server::new(backend, spaces, ServerConfig::new(f.keys.clone()))
        .device_redemptions_in(admin, "default")
        .router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

#[tokio::test]
async fn device_flow_binds_without_a_browser_redirect() {
    let f = fixture().await;
    klutch_sdk::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let sid = klutch_sdk::backend::state::random_token(22);

    // Bad input first.
    let (status, _) = post(
        &http,
        &format!("{}/device/authorize", f.base),
        &[("s", "a-b"), ("c", "cid")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = post(
        &http,
        &format!("{}/device/token", f.base),
        &[("device_code", "forged")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // The API to bind is part of the request.
    let (status, _) = post(
        &http,
        &format!("{}/device/authorize", f.base),
        &[("s", sid.as_str()), ("c", "cidDev1")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, started) = post(
        &http,
        &format!("{}/device/authorize", f.base),
        &[
            ("s", sid.as_str()),
            ("c", "cidDev1"),
            ("resource", "mangodbs.mangodb.com"),
            ("cluster", "https://app.example.com:6443"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let confirm = started["user_code"].as_str().unwrap().to_owned();
    // The user is sent to the backend's consent page, not to Dex: it shows who asks for what.
    let consent_url = started["verification_uri"].as_str().unwrap().to_owned();
    assert!(
        consent_url.starts_with(&format!("{}/device/consent?t=", f.base)),
        "{consent_url}"
    );
    let consent = http.get(&consent_url).send().await.unwrap();
    assert_eq!(consent.status().as_u16(), 200);
    let consent = consent.text().await.unwrap();
    for shown in [
        "cidDev1",
        "mangodbs.mangodb.com",
        "https://app.example.com:6443",
        confirm.as_str(),
        "127.0.0.1",
    ] {
        assert!(
            consent.contains(shown),
            "consent page lacks {shown}: {consent}"
        );
    }
    let dex_link = consent
        .split("class=\"continue\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no link to Dex: {consent}"))
        .replace("&amp;", "&");
    let user_code = consent
        .split("class=\"idp-code\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    assert!(
        !started.to_string().contains(&user_code),
        "Dex's user code stays with the backend"
    );
    // A forged ticket shows nothing.
    let forged = http
        .get(format!("{}/device/consent?t=forged", f.base))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 400);
    assert!(started["interval"].as_u64().unwrap() > 0);
    assert!(started["expires_in"].as_u64().unwrap() > 0);
    let token_url = format!("{}/device/token", f.base);
    let (status, body) = post(&http, &token_url, &[("device_code", &device_code)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending")),
        "{body}"
    );
    // The sealed code cannot be altered.
    let mut tampered = device_code.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let (status, body) = post(
        &http,
        &token_url,
        &[("device_code", &String::from_utf8(tampered).unwrap())],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    approve_at_dex(
        f.env.dex().unwrap().issuer(),
        &dex_link,
        &user_code,
        "alice@example.com",
    )
    .await;

    let done = eventually("device token", || async {
        let (status, body) = post(&http, &token_url, &[("device_code", &device_code)]).await;
        match (status, body["error"].as_str()) {
            (200, _) => Some(body),
            (400, Some("authorization_pending" | "slow_down")) => None,
            other => panic!("unexpected {other:?}: {body}"),
        }
    })
    .await;
    assert_eq!(done["sid"], sid.as_str());
    assert_eq!(done["expires_in"], 3600);
    // Redeemed once: Dex would hand the token out again, the backend does not — neither this
    // replica nor another one with the same keys.
    let (status, again) = post(&http, &token_url, &[("device_code", &device_code)]).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "a second session from one device code: {again}"
    );
    let other = second_replica(f).await;
    let (status, again) = post(
        &http,
        &format!("{other}/device/token"),
        &[("device_code", &device_code)],
    )
    .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "a second session from another replica: {again}"
    );
    let redemptions = kube::Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        f.admin().await,
        "default",
    )
    .list(&kube::api::ListParams::default().labels(&format!(
        "{}=true",
        klutch_sdk::backend::server::REDEMPTION_LABEL
    )))
    .await
    .unwrap();
    assert_eq!(
        redemptions.items.len(),
        1,
        "one Lease records the redemption"
    );
    let cookie = format!("klutch-bind-{sid}={}", done["session"].as_str().unwrap());

    let catalogue: serde_json::Value = http
        .get(format!("{}/resources?s={sid}", f.base))
        .header("cookie", &cookie)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = catalogue["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "mangodbs")
        .unwrap_or_else(|| panic!("{catalogue}"));
    assert_eq!(entry["group"], "mangodb.com");
    assert_eq!(entry["scope"], "Namespaced");
    assert_eq!(entry["versions"], serde_json::json!(["v1alpha1"]));
    assert_eq!(entry["name"], "mangodb");

    // The session binds only the approved API.
    let other = http
        .get(format!("{}/bind?s={sid}&group=&resource=secrets", f.base))
        .header("cookie", &cookie)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 403);
    let resp = http
        .get(format!(
            "{}/bind?s={sid}&group=mangodb.com&resource=mangodbs",
            f.base
        ))
        .header("cookie", &cookie)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let response: BindingResponse = resp.json().await.unwrap();
    assert_eq!(
        response
            .authentication
            .oauth2_code_grant
            .as_ref()
            .unwrap()
            .sid,
        sid
    );
    let (tenant, ns) = tenant_client(&response).await;
    let requests = kube::Api::<klutch_sdk::api::APIServiceExportRequest>::namespaced(tenant, &ns);
    requests
        .list(&Default::default())
        .await
        .expect("the issued kubeconfig works");
}

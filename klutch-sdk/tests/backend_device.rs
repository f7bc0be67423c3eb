//! The non-interactive (device authorization) binding flow against real Dex and a real
//! kube-apiserver, exactly as `kubectl bind --non-interactive` drives it: `/device/authorize`,
//! polling `/device/token`, the user approving at Dex's `/device` page, then `/resources` and
//! `/bind` as JSON with the session cookie.

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

/// The user's side: open the verification page, type the code, log in at Dex.
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

    let (status, started) = post(
        &http,
        &format!("{}/device/authorize", f.base),
        &[("s", sid.as_str()), ("c", "cidDev1")],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let user_code = started["user_code"].as_str().unwrap().to_owned();
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
        started["verification_uri"].as_str().unwrap(),
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

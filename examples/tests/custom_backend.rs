//! `examples/custom_backend.rs` against a real kube-apiserver: static-token login, catalogue,
//! bind, a working kubeconfig and an export from the SDK's controllers.

#[allow(dead_code)]
#[path = "../custom_backend.rs"]
mod custom_backend;

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser as _;
use klutch_sdk::api::export_request::ExportRequestPhase;
use klutch_sdk::api::wire::BindingResponse;
use klutch_sdk::api::{APIServiceExport, APIServiceExportRequest};
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::api::{Api, ObjectMeta, PostParams};

struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let resp = req
            .header("cookie", cookies.join("; "))
            .send()
            .await
            .unwrap();
        for sc in resp.headers().get_all("set-cookie") {
            let (k, v) = sc
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .split_once('=')
                .unwrap();
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
        Page {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            body: resp.text().await.unwrap(),
        }
    }
}

fn mangodb_crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": "mangodbs.mangodb.com" },
        "spec": { "group": "mangodb.com", "scope": "Namespaced",
            "names": { "kind": "MangoDB", "plural": "mangodbs", "singular": "mangodb", "listKind": "MangoDBList" },
            "versions": [{ "name": "v1alpha1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }] }
    }))
    .unwrap()
}

#[tokio::test]
async fn static_token_backend_binds_end_to_end() {
    klutch_sdk::tls::install_crypto_provider();
    let env = TestEnv::shared().await.expect("shared environment");
    let cluster = &env["control-plane"];
    let admin = cluster.client().await.unwrap();
    for crd in klutch_sdk::api::crds() {
        install_crd(&admin, &crd).await.unwrap();
    }
    install_crd(&admin, &mangodb_crd()).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cli = custom_backend::Cli::parse_from([
        "custom_backend",
        "--tokens",
        "s3cret=alice",
        "--offer",
        "mangodbs.mangodb.com",
    ]);
    let config = cluster.admin().config().await.unwrap();
    tokio::spawn(async move { custom_backend::serve(cli, config, listener).await.unwrap() });

    let mut b = Browser {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap(),
        cookies: BTreeMap::new(),
    };
    let export: serde_json::Value = b
        .http
        .get(format!("{base}/export"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export["providerPrettyName"], "Static Example");
    assert_eq!(
        export["authenticationMethods"].as_array().unwrap().len(),
        1,
        "no device grant"
    );
    let device = b
        .send(
            b.http
                .post(format!("{base}/device/authorize"))
                .form(&[("s", "abc"), ("c", "def")]),
        )
        .await;
    assert_eq!(device.status, 501);

    let start = b
        .send(
            b.http
                .get(format!("{base}/authorize?p=41000&s=sidStatic1&c=cidStatic")),
        )
        .await;
    assert_eq!(start.status, 302);
    let login = start.location.unwrap();
    assert!(login.starts_with("/login?state="), "{login}");
    let page = b.send(b.http.get(format!("{base}{login}"))).await;
    let state = page
        .body
        .split("name=\"state\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let wrong = b
        .send(
            b.http
                .post(format!("{base}/callback"))
                .form(&[("state", state.as_str()), ("code", "guess")]),
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let ok = b
        .send(
            b.http
                .post(format!("{base}/callback"))
                .form(&[("state", state.as_str()), ("code", "s3cret")]),
        )
        .await;
    assert_eq!(ok.status, 302, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/resources?s=sidStatic1"));
    let catalogue = b
        .send(b.http.get(format!("{base}/resources?s=sidStatic1")))
        .await;
    assert!(
        catalogue
            .body
            .contains("btn btn-lg btn-block btn-primary mangodbs"),
        "{}",
        catalogue.body
    );
    let bound = b
        .send(b.http.get(format!(
            "{base}/bind?s=sidStatic1&resource=mangodbs&group=mangodb.com"
        )))
        .await;
    assert_eq!(bound.status, 302, "{}", bound.body);
    let location = url::Url::parse(&bound.location.unwrap()).unwrap();
    let response = location
        .query_pairs()
        .find(|(k, _)| k == "response")
        .unwrap()
        .1
        .into_owned();
    let response = BindingResponse::decode(&response).unwrap();

    let kc =
        kube::config::Kubeconfig::from_yaml(std::str::from_utf8(&response.kubeconfig).unwrap())
            .unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let ns = config.default_namespace.clone();
    let tenant = kube::Client::try_from(config).unwrap();
    let requests = Api::<APIServiceExportRequest>::namespaced(tenant.clone(), &ns);
    let req = APIServiceExportRequest {
        metadata: ObjectMeta {
            name: Some("mangodbs.mangodb.com".into()),
            ..ObjectMeta::default()
        },
        spec: response.requests[0].spec.clone(),
        status: None,
    };
    requests
        .create(&PostParams::default(), &req)
        .await
        .expect("the issued kubeconfig may create requests");
    for _ in 0..300 {
        let r = requests.get("mangodbs.mangodb.com").await.unwrap();
        if r.status
            .is_some_and(|s| s.phase == ExportRequestPhase::Succeeded)
        {
            let export = Api::<APIServiceExport>::namespaced(tenant, &ns)
                .get("mangodbs.mangodb.com")
                .await
                .unwrap();
            assert_eq!(export.spec.names.kind, "MangoDB");
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the request never succeeded");
}

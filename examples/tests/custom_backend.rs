//! `examples/custom_backend.rs` against a real kube-apiserver: static-token login, catalogue,
//! bind, a working kubeconfig and an export from the SDK's controllers.

#[allow(dead_code)]
#[path = "../custom_backend.rs"]
mod custom_backend;

use std::time::Duration;

use clap::Parser as _;
use klutch_sdk::api::export_request::ExportRequestPhase;
use klutch_sdk::api::wire::BindingResponse;
use klutch_sdk::api::{APIServiceExport, APIServiceExportRequest};
use klutch_sdk::testenv::browser::{Browser, input_value, query_param};
use klutch_sdk::testenv::fixtures::TestCrd;
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::api::{Api, PostParams};

#[tokio::test]
async fn static_token_backend_binds_end_to_end() {
    klutch_sdk::tls::install_crypto_provider();
    let env = TestEnv::shared().await.expect("shared environment");
    let cluster = &env["control-plane"];
    let admin = cluster.client().await.unwrap();
    for crd in klutch_sdk::api::crds() {
        install_crd(&admin, &crd).await.unwrap();
    }
    install_crd(
        &admin,
        &TestCrd::mangodb().preserve_unknown_fields().build(),
    )
    .await
    .unwrap();

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

    let mut b = Browser::new().unwrap();
    let export: serde_json::Value =
        serde_json::from_str(&b.get(&format!("{base}/export")).await.unwrap().body).unwrap();
    assert_eq!(export["providerPrettyName"], "Static Example");
    assert_eq!(
        export["authenticationMethods"].as_array().unwrap().len(),
        1,
        "no device grant"
    );
    let device = b
        .post_form(
            &format!("{base}/device/authorize"),
            &[("s", "abc"), ("c", "def")],
        )
        .await
        .unwrap();
    assert_eq!(device.status, 501);

    let start = b
        .get(&format!(
            "{base}/authorize?p=41000&s=sidStatic1&c=cidStatic"
        ))
        .await
        .unwrap();
    assert_eq!(start.status, 302);
    let login = start.raw_location().unwrap().to_owned();
    assert!(login.starts_with("/login?state="), "{login}");
    let page = b.get(&format!("{base}{login}")).await.unwrap();
    let state = input_value(&page.body, "state").unwrap();
    let callback = format!("{base}/callback");
    let wrong = b
        .post_form(&callback, &[("state", state.as_str()), ("code", "guess")])
        .await
        .unwrap();
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let ok = b
        .post_form(&callback, &[("state", state.as_str()), ("code", "s3cret")])
        .await
        .unwrap();
    assert_eq!(ok.status, 302, "{}", ok.body);
    assert_eq!(ok.raw_location(), Some("/resources?s=sidStatic1"));
    let catalogue = b
        .get(&format!("{base}/resources?s=sidStatic1"))
        .await
        .unwrap();
    assert!(
        catalogue
            .body
            .contains("btn btn-lg btn-block btn-primary mangodbs"),
        "{}",
        catalogue.body
    );
    let bound = b
        .get(&format!(
            "{base}/bind?s=sidStatic1&resource=mangodbs&group=mangodb.com"
        ))
        .await
        .unwrap();
    assert_eq!(bound.status, 302, "{}", bound.body);
    let response = query_param(&bound.location.unwrap(), "response").unwrap();
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
    let mut req = response.requests[0].to_export_request();
    req.metadata.name = Some("mangodbs.mangodb.com".into());
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

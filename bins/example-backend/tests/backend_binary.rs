//! The real `example-backend` binary against a real kube-apiserver and Dex, served over TLS:
//! `/export` advertises https, `/healthz`, `/metrics`, the redirect to Dex with a `Secure`
//! pending-login cookie, and the Lease `klutch-bind-backend` held by its identity.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use klutch_sdk::testenv::{DexClient, DexConfig, DexUser, TestEnv, free_port, install_crd};

#[tokio::test]
async fn the_binary_serves_tls_metrics_and_takes_the_lease() {
    klutch_sdk::tls::install_crypto_provider();
    let port = free_port().unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let env = TestEnv::builder()
        .cluster("provider")
        .dex(DexConfig {
            users: vec![DexUser::new("alice@example.com", "password")],
            clients: vec![DexClient::confidential(
                "klutch-backend",
                "secret",
                &[&format!("{base}/callback")],
            )],
        })
        .start()
        .await
        .unwrap();
    let cluster = &env["provider"];
    let admin = cluster.client().await.unwrap();
    for crd in klutch_sdk::api::crds() {
        install_crd(&admin, &crd).await.unwrap();
    }
    let dir = env.dir().join("example-backend");
    std::fs::create_dir_all(&dir).unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_example-backend"))
        .args([
            &format!("--listen-address=127.0.0.1:{port}"),
            &format!("--kubeconfig={}", cluster.kubeconfig_path().display()),
            &format!("--oidc-issuer-url={}", env.dex().unwrap().issuer()),
            "--oidc-issuer-client-id=klutch-backend",
            &format!("--oidc-callback-url={base}/callback"),
            &format!("--tls-cert-file={}", dir.join("tls.crt").display()),
            &format!("--tls-key-file={}", dir.join("tls.key").display()),
            "--pretty-name=Binary Test",
            "--log-format=json",
            "--lease-identity=binary-1",
        ])
        .env("OIDC_CLIENT_SECRET", "secret")
        .env(
            "COOKIE_SIGNING_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let mut export = None;
    for _ in 0..300 {
        if let Ok(resp) = http.get(format!("{base}/export")).send().await {
            export = Some(resp.json::<serde_json::Value>().await.unwrap());
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited: {}",
            std::fs::read_to_string(dir.join("stderr.log")).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let export = export.expect("the backend answers");
    assert_eq!(export["providerPrettyName"], "Binary Test");
    assert_eq!(export["version"], format!("v{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        export["authenticationMethods"][0]["oauth2CodeGrant"]["authenticatedURL"],
        format!("{base}/authorize")
    );

    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let login = http
        .get(format!("{base}/authorize?p=5000&s=abc&c=def"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 302);
    let location = login.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{}/auth?", env.dex().unwrap().issuer())),
        "{location}"
    );
    assert!(
        location.contains("code_challenge_method=S256"),
        "{location}"
    );
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"klutch_backend_http_requests_total{path="/authorize",status="302"} 1"#),
        "{metrics}"
    );

    let leases = kube::Api::<Lease>::namespaced(admin, "default");
    let mut holder = None;
    for _ in 0..200 {
        holder = leases
            .get_opt("klutch-bind-backend")
            .await
            .unwrap()
            .and_then(|l| l.spec.and_then(|s| s.holder_identity));
        if holder.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(holder.as_deref(), Some("binary-1"));
    let logs = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    let first = logs.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "JSON logs: {first}"
    );
    assert!(!logs.contains("secret\""), "no secret in logs");
    child.kill().await.unwrap();
}

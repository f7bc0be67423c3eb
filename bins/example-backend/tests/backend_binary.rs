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
    // The backend runs with exactly the RBAC of its generated manifests, not as admin.
    let identity = cluster.identity("example-backend", &[]).unwrap();
    identity.write_kubeconfig(&dir.join("kubeconfig")).unwrap();
    let manifests = klutch_sdk::deploy::backend::manifests(
        &klutch_sdk::deploy::backend::ManifestOptions::placeholders(),
    );
    for m in manifests
        .iter()
        .filter(|m| m["kind"] == "ClusterRole" || m["kind"] == "ClusterRoleBinding")
    {
        let mut m = m.clone();
        if m["kind"] == "ClusterRoleBinding" {
            m["subjects"] = serde_json::json!([{ "kind": "User", "name": "example-backend", "apiGroup": "rbac.authorization.k8s.io" }]);
        }
        let obj: kube::api::DynamicObject = serde_json::from_value(m).unwrap();
        let gvk = kube::api::GroupVersionKind::try_from(obj.types.as_ref().unwrap()).unwrap();
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::all_with(admin.clone(), &kube::api::ApiResource::from_gvk(&gvk));
        api.patch(
            &obj.metadata.name.clone().unwrap(),
            &kube::api::PatchParams::apply("test").force(),
            &kube::api::Patch::Apply(&obj),
        )
        .await
        .unwrap();
    }
    install_crd(
        &admin,
        &klutch_sdk::testenv::fixtures::TestCrd::mangodb().build(),
    )
    .await
    .unwrap();
    let template: klutch_sdk::api::APIServiceExportTemplate = serde_json::from_value(serde_json::json!({
        "apiVersion": "example-backend.klutch.anynines.com/v1alpha1", "kind": "APIServiceExportTemplate",
        "metadata": { "name": "mangodbs", "namespace": "default" },
        "spec": { "APIServiceSelector": { "group": "mangodb.com", "resource": "mangodbs" },
                  "permissionClaims": [{ "group": "", "resource": "secrets", "version": "v1" }] }
    })).unwrap();
    kube::Api::<klutch_sdk::api::APIServiceExportTemplate>::namespaced(admin.clone(), "default")
        .create(&Default::default(), &template)
        .await
        .unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();

    let spawn = |port: u16, identity: &str, log: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_example-backend"))
            .args([
                &format!("--listen-address=127.0.0.1:{port}"),
                &format!("--kubeconfig={}", dir.join("kubeconfig").display()),
                &format!("--oidc-issuer-url={}", env.dex().unwrap().issuer()),
                "--oidc-issuer-client-id=klutch-backend",
                &format!("--oidc-callback-url={base}/callback"),
                &format!("--tls-cert-file={}", dir.join("tls.crt").display()),
                &format!("--tls-key-file={}", dir.join("tls.key").display()),
                "--pretty-name=Binary Test",
                "--log-format=json",
                &format!("--lease-identity={identity}"),
            ])
            .env("OIDC_CLIENT_SECRET", "secret")
            .env(
                "COOKIE_SIGNING_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .stderr(std::fs::File::create(dir.join(log)).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut child = spawn(port, "binary-1", "stderr.log");

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

    // With the manifests' RBAC: a binding space (as /bind creates it), an export from a
    // tenant's request, and a service namespace with its RoleBinding.
    let restricted = identity.client().await.unwrap();
    let spaces = klutch_sdk::backend::BindingSpaces::new(
        restricted,
        klutch_sdk::backend::BindingSpaceConfig::new(
            "Binary Test",
            klutch_sdk::backend::ExternalCluster {
                server: cluster.url().into(),
                ca_pem: Some(cluster.ca_pem().into()),
                server_name: None,
            },
        ),
    );
    let space = spaces
        .ensure(&klutch_sdk::backend::BindingIdentity::new(
            "https://idp.example.com",
            "alice",
            "cidBin",
        ))
        .await
        .expect("the manifests' RBAC suffices for binding spaces");
    let kc = kube::config::Kubeconfig::from_yaml(std::str::from_utf8(&space.kubeconfig).unwrap())
        .unwrap();
    let tenant = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let requests = kube::Api::<klutch_sdk::api::APIServiceExportRequest>::namespaced(
        tenant.clone(),
        &space.namespace,
    );
    let request: klutch_sdk::api::APIServiceExportRequest =
        serde_json::from_value(serde_json::json!({
            "apiVersion": "klutch.anynines.com/v1alpha1", "kind": "APIServiceExportRequest",
            "metadata": { "name": "mangodbs.mangodb.com" },
            "spec": { "resources": [{ "group": "mangodb.com", "resource": "mangodbs" }] }
        }))
        .unwrap();
    requests
        .create(&Default::default(), &request)
        .await
        .unwrap();
    let asns = kube::Api::<klutch_sdk::api::APIServiceNamespace>::namespaced(
        tenant.clone(),
        &space.namespace,
    );
    asns.create(
        &Default::default(),
        &klutch_sdk::api::APIServiceNamespace::new("apps", Default::default()),
    )
    .await
    .unwrap();
    let mut service_ns = None;
    for _ in 0..600 {
        let phase = requests
            .get("mangodbs.mangodb.com")
            .await
            .unwrap()
            .status
            .map(|s| s.phase);
        service_ns = asns
            .get("apps")
            .await
            .unwrap()
            .status
            .and_then(|s| s.namespace);
        if phase == Some(klutch_sdk::api::export_request::ExportRequestPhase::Succeeded)
            && service_ns.is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let service_ns = service_ns.expect("service namespace assigned by the restricted backend");
    let mangodbs = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("mangodb.com", "v1alpha1", "MangoDB"),
        "mangodbs",
    );
    let mut allowed = false;
    for _ in 0..300 {
        if kube::Api::<kube::api::DynamicObject>::namespaced_with(
            tenant.clone(),
            &service_ns,
            &mangodbs,
        )
        .list(&Default::default())
        .await
        .is_ok()
        {
            allowed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        allowed,
        "the restricted backend granted the tenant its exported resource: {}",
        std::fs::read_to_string(dir.join("stderr.log")).unwrap()
    );
    let logs = std::fs::read_to_string(dir.join("stderr.log")).unwrap();
    let first = logs.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "JSON logs: {first}"
    );
    assert!(!logs.contains("secret\""), "no secret in logs");

    // A second replica serves HTTP without the Lease, and takes the Lease over when the first
    // one dies.
    let port2 = free_port().unwrap();
    let mut second = spawn(port2, "binary-2", "stderr-2.log");
    let mut served = false;
    for _ in 0..300 {
        if let Ok(resp) = http
            .get(format!("https://127.0.0.1:{port2}/healthz"))
            .send()
            .await
        {
            served = resp.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the second replica serves HTTP");
    assert_eq!(
        leases
            .get("klutch-bind-backend")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("binary-1")
    );
    child.kill().await.unwrap();
    let mut holder = None;
    for _ in 0..600 {
        holder = leases
            .get("klutch-bind-backend")
            .await
            .unwrap()
            .spec
            .and_then(|s| s.holder_identity);
        if holder.as_deref() == Some("binary-2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        holder.as_deref(),
        Some("binary-2"),
        "the second replica takes over the Lease"
    );
    second.kill().await.unwrap();
}

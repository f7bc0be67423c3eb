//! `kubectl bind` end to end, with every real part: a provider cluster and an app cluster (real
//! kube-apiservers), Dex as the identity provider, the reference backend (OIDC, templates,
//! binding spaces, controllers under a Lease), the konnector (run locally against the app
//! cluster, as `--skip-konnector`-less installs would run it in a pod), and the CLI. The browser
//! step is driven by `klutch_sdk::testenv::browser` (redirects, Dex's login form, the catalogue's
//! Bind link). Klutch's own e2e fixtures (the `mangodbs` CRD and template) are the bound API.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::APIServiceExportTemplate;
use klutch_sdk::backend::controllers::run_under_lease;
use klutch_sdk::backend::{
    BindingSpaceConfig, BindingSpaces, ExternalCluster, OidcAuthenticator, OidcConfig, Server,
    ServerConfig, SessionKeys, TemplateBackend, TemplateBackendConfig,
};
use klutch_sdk::konnector::Konnector;
use klutch_sdk::testenv::browser::Browser;
use klutch_sdk::testenv::{DexClient, DexConfig, DexUser, TestEnv, free_port, install_crd};
use kube::api::{Api, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;

const CLIENT_ID: &str = "klutch-backend";
const CLIENT_SECRET: &str = "e2e-client-secret";
const USER: &str = "alice@example.com";
const PASSWORD: &str = "password";
const WAIT: Duration = Duration::from_secs(120);

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/klutch-v1.5/bind/test/e2e/bind/fixtures/provider")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (check out ../shared beside the repository)",
            path.display()
        )
    })
}

async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    klutch_sdk::testenv::eventually(what, WAIT, probe)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Starts the reference backend in-process on `port` against the provider cluster.
async fn start_backend(env: &TestEnv, port: u16) {
    let provider = &env["provider"];
    let client = provider.client().await.unwrap();
    let callback = format!("http://127.0.0.1:{port}/callback");
    let auth = OidcAuthenticator::discover(OidcConfig {
        issuer_url: env.dex().expect("Dex").issuer().to_owned(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.to_owned().into(),
        callback_url: callback.clone(),
        ca_pem: None,
    })
    .await
    .expect("discover Dex");
    let backend = TemplateBackend::start(
        client.clone(),
        auth,
        TemplateBackendConfig {
            pretty_name: "E2E Provider".into(),
            consumer_scope: klutch_sdk::api::export::Scope::Namespaced,
            cluster_scoped_isolation: klutch_sdk::api::export::ClusterScopedIsolation::Prefixed,
        },
    )
    .await
    .expect("start the template backend");
    let spaces = std::sync::Arc::new(BindingSpaces::new(
        client.clone(),
        BindingSpaceConfig {
            namespace_prefix: "cluster".into(),
            pretty_name: "E2E Provider".into(),
            external: ExternalCluster {
                server: provider.url().to_owned(),
                ca_pem: Some(provider.ca_pem().to_owned()),
                server_name: None,
            },
            token_timeout: Duration::from_secs(30),
        },
    ));
    let mut config = ServerConfig::new(SessionKeys::generate());
    config.callback_url = Some(callback);
    let router = Server::new(backend.clone(), spaces, config).router();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("serve the backend")
    });
    tokio::spawn(async move {
        run_under_lease(client, backend, "default", "e2e-backend")
            .await
            .expect("backend controllers")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bind_an_api_and_sync_an_object_both_ways() {
    klutch_sdk::tls::install_crypto_provider();
    let port = free_port().unwrap();
    let dex = DexConfig {
        users: vec![DexUser::new(USER, PASSWORD)],
        clients: vec![DexClient::confidential(
            CLIENT_ID,
            CLIENT_SECRET,
            &[&format!("http://127.0.0.1:{port}/callback")],
        )],
    };
    let env = TestEnv::builder()
        .cluster("provider")
        .cluster("app")
        .dex(dex)
        .start()
        .await
        .expect("start two clusters and Dex");
    let provider = env["provider"].client().await.unwrap();
    let app = env["app"].client().await.unwrap();

    // The provider side, as a platform team sets it up: klutch's CRDs, Klutch's e2e CRD and
    // export template, and the backend.
    for crd in klutch_sdk::api::crds() {
        install_crd(&provider, &crd).await.unwrap();
    }
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(&fixture("crd-mangodb.yaml")).unwrap();
    install_crd(&provider, &crd).await.unwrap();
    let template: APIServiceExportTemplate =
        serde_saphyr::from_str(&fixture("exporttemplate-mangodb.yaml")).unwrap();
    Api::<APIServiceExportTemplate>::namespaced(provider.clone(), "default")
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    start_backend(&env, port).await;

    // The konnector engine, run locally against the app cluster (it installs its binding CRD
    // itself).
    let konnector_app = app.clone();
    let konnector = tokio::spawn(async move {
        let konnector = Konnector::builder(konnector_app)
            .events(Some("e2e-konnector"))
            .build();
        konnector.install_crd().await?;
        konnector.run(std::future::pending()).await;
        Ok::<(), klutch_sdk::konnector::Error>(())
    });

    // kubectl bind <url>, consenting to the claims non-interactively.
    let (mut io, stdout, stderr) = kubectl_bind::Io::capture("");
    let (urls_tx, mut urls) = tokio::sync::mpsc::unbounded_channel();
    io.login_urls = Some(urls_tx);
    let kubeconfig = env["app"].kubeconfig_path().to_string_lossy().into_owned();
    let export_url = format!("http://127.0.0.1:{port}/export");
    let cli = tokio::spawn(kubectl_bind::run(
        [
            "kubectl-bind".to_owned(),
            export_url,
            "--kubeconfig".into(),
            kubeconfig,
            "--accept-claims=all".into(),
            "--skip-konnector".into(),
            "--timeout=3m".into(),
        ],
        io,
    ));
    let login_url = tokio::time::timeout(WAIT, urls.recv())
        .await
        .unwrap_or_else(|_| panic!("no login URL; stderr:\n{}", stderr.contents()))
        .unwrap_or_else(|| {
            panic!(
                "the CLI exited before printing a login URL:\n{}",
                stderr.contents()
            )
        });
    assert!(
        login_url.starts_with(&format!("http://127.0.0.1:{port}/authorize?")),
        "{login_url}"
    );
    let mut browser = Browser::new().unwrap();
    let landed = match browser
        .bind(&login_url, USER, PASSWORD, "mangodbs", "http://localhost:")
        .await
    {
        Ok(landed) => landed,
        Err(e) => panic!(
            "browser step failed: {e}\nCLI stderr:\n{}",
            stderr.contents()
        ),
    };
    assert!(landed.contains("/callback?response="), "{landed}");
    let code = tokio::time::timeout(WAIT, cli)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "kubectl bind did not finish; stderr:\n{}",
                stderr.contents()
            )
        })
        .unwrap();
    assert_eq!(
        code,
        0,
        "kubectl bind failed:\nstdout:\n{}\nstderr:\n{}",
        stdout.contents(),
        stderr.contents()
    );
    let out = stdout.contents();
    assert!(
        out.contains("mangodbs.mangodb.com"),
        "the binding table lists the binding:\n{out}"
    );
    let err = stderr.contents();
    assert!(err.contains("Successfully authenticated"), "{err}");
    assert!(
        err.contains("Created APIServiceBinding mangodbs.mangodb.com"),
        "{err}"
    );

    // The konnector materialises the CRD in the app cluster.
    let crds = Api::<CustomResourceDefinition>::all(app.clone());
    eventually("the mangodbs CRD in the app cluster", || async {
        crds.get_opt("mangodbs.mangodb.com").await.ok().flatten()
    })
    .await;

    // An object created in the app cluster appears on the control plane...
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("shop".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(app.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let ar = ApiResource {
        group: "mangodb.com".into(),
        version: "v1alpha1".into(),
        api_version: "mangodb.com/v1alpha1".into(),
        kind: "MangoDB".into(),
        plural: "mangodbs".into(),
    };
    let consumer = Api::<DynamicObject>::namespaced_with(app.clone(), "shop", &ar);
    let obj: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "mangodb.com/v1alpha1",
        "kind": "MangoDB",
        "metadata": { "name": "orders", "namespace": "shop" },
        "spec": { "tokenSecret": "orders-token", "tier": "Dedicated" },
    }))
    .unwrap();
    eventually("the app cluster to serve mangodbs", || async {
        consumer.create(&PostParams::default(), &obj).await.ok()
    })
    .await;
    let everywhere = Api::<DynamicObject>::all_with(provider.clone(), &ar);
    let copy = eventually("the provider copy of shop/orders", || async {
        let list = everywhere.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|o| o.metadata.name.as_deref() == Some("orders"))
    })
    .await;
    assert_eq!(copy.data["spec"]["tier"], "Dedicated");
    assert_eq!(copy.data["spec"]["tokenSecret"], "orders-token");
    let copy_ns = copy.metadata.namespace.clone().unwrap();
    assert_ne!(
        copy_ns, "shop",
        "the copy lives in the tenant's service namespace"
    );
    assert_eq!(
        copy.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("klutch.anynines.com/bound"))
            .map(String::as_str),
        Some("true")
    );

    // ...and its status, written on the control plane, comes back.
    let provider_ns = Api::<DynamicObject>::namespaced_with(provider.clone(), &copy_ns, &ar);
    provider_ns
        .patch_status(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": { "phase": "Running" } })),
        )
        .await
        .unwrap();
    eventually("the status to come back to the app cluster", || async {
        let o = consumer.get("orders").await.ok()?;
        (o.data["status"]["phase"] == "Running").then_some(())
    })
    .await;

    // Deleting it in the app cluster removes the provider copy.
    consumer
        .delete("orders", &Default::default())
        .await
        .unwrap();
    eventually("the provider copy to be deleted", || async {
        provider_ns
            .get_opt("orders")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(!konnector.is_finished(), "the konnector kept running");
    konnector.abort();
}

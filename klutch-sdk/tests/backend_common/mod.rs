//! Shared fixture of the backend tests: one provider cluster, Dex, and the reference backend
//! (template backend + OIDC + controllers under the Lease) on a runtime of its own, so that every
//! `#[tokio::test]` of a test binary can use it, and the browser flow up to the BindingResponse
//! (with `klutch_sdk::testenv::browser`).
#![allow(dead_code, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use klutch_sdk::api::wire::BindingResponse;
use klutch_sdk::api::{APIServiceExportTemplate, APIServiceExportTemplateSpec};
use klutch_sdk::backend::{
    BindingSpaceConfig, BindingSpaces, ExternalCluster, OidcAuthenticator, OidcConfig, OidcOptions,
    Server, ServerConfig, SessionKeys, TemplateBackend, TemplateBackendConfig,
};
use klutch_sdk::testenv::browser::{Browser, bind_link, query_param};
use klutch_sdk::testenv::fixtures::TestCrd;
use klutch_sdk::testenv::{DexClient, DexConfig, DexUser, TestEnv, free_port, install_crd};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};

pub const WAIT: Duration = Duration::from_secs(90);
pub const CLIENT_ID: &str = "klutch-backend";
pub const CLIENT_SECRET: &str = "klutch-backend-secret";
/// The public client of the device flow (no secret).
pub const DEVICE_CLIENT_ID: &str = "klutch-backend-device";
pub const PASSWORD: &str = "password";
/// Export requests failing this long fail for good (in the tests).
pub const FAIL_AFTER_SECS: u64 = 4;
/// Export requests are deleted this long after creation (in the tests).
pub const COLLECT_AFTER_SECS: u64 = 30;

pub struct Fixture {
    pub env: &'static TestEnv,
    /// `http://127.0.0.1:<port>` of the backend.
    pub base: String,
    pub keys: SessionKeys,
    /// Every `klutch-binder-*` ClusterRoleBinding ever seen (must stay empty: Namespaced scope).
    pub crbs_seen: Arc<Mutex<Vec<String>>>,
}

impl Fixture {
    pub async fn admin(&self) -> kube::Client {
        self.env["provider"]
            .client()
            .await
            .expect("provider client")
    }
}

static FIXTURE: tokio::sync::OnceCell<Fixture> = tokio::sync::OnceCell::const_new();

pub fn users() -> Vec<&'static str> {
    vec![
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
    ]
}

pub async fn fixture() -> &'static Fixture {
    FIXTURE
        .get_or_init(|| async {
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let fixture = start().await;
                    tx.send(fixture).ok().expect("test waits");
                    std::future::pending::<()>().await;
                });
            });
            rx.await.expect("fixture started")
        })
        .await
}

pub async fn template(
    client: &kube::Client,
    name: &str,
    group: &str,
    resource: &str,
    claims: serde_json::Value,
) {
    let t = APIServiceExportTemplate::new(
        name,
        APIServiceExportTemplateSpec {
            api_service_selector: serde_json::from_value(
                serde_json::json!({ "group": group, "resource": resource }),
            )
            .unwrap(),
            permission_claims: serde_json::from_value(claims).unwrap(),
        },
    );
    Api::<APIServiceExportTemplate>::namespaced(client.clone(), "default")
        .patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&t))
        .await
        .expect("apply template");
}

async fn start() -> Fixture {
    klutch_sdk::tls::install_crypto_provider();
    // RUST_LOG=klutch_sdk=debug shows the backend's logs next to a failing test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let port = free_port().expect("port");
    let base = format!("http://127.0.0.1:{port}");
    let callback = format!("{base}/callback");
    let dex = DexConfig {
        users: users()
            .into_iter()
            .map(|u| DexUser::new(u, PASSWORD))
            .collect(),
        clients: vec![
            DexClient::confidential(CLIENT_ID, CLIENT_SECRET, &[&callback]),
            DexClient::public(DEVICE_CLIENT_ID),
        ],
    };
    let env = TestEnv::builder()
        .cluster("provider")
        .dex(dex)
        .start()
        .await
        .expect("start provider cluster and Dex");
    let env: &'static TestEnv = Box::leak(Box::new(env));
    let cluster = &env["provider"];
    let client = cluster.client().await.expect("client");
    for crd in klutch_sdk::api::crds() {
        install_crd(&client, &crd)
            .await
            .expect("install klutch CRDs");
    }
    install_crd(
        &client,
        &TestCrd::mangodb().status_subresource().tier().build(),
    )
    .await
    .expect("install mangodb CRD");
    template(
        &client,
        "mangodbs",
        "mangodb.com",
        "mangodbs",
        serde_json::json!([{ "group": "", "resource": "secrets", "version": "v1", "selector": { "owner": "Provider" } }]),
    )
    .await;

    // Record every tenant ClusterRoleBinding, from before the backend starts.
    let crbs_seen = Arc::new(Mutex::new(Vec::new()));
    let seen = crbs_seen.clone();
    let crbs = Api::<ClusterRoleBinding>::all(client.clone());
    let mut stream = Box::pin(
        watcher(crbs, watcher::Config::default())
            .default_backoff()
            .applied_objects(),
    );
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(crb)) => {
                        let name = crb.metadata.name.unwrap_or_default();
                        if name.starts_with("klutch-binder-") {
                            seen.lock().unwrap().push(name);
                        }
                    }
                    Some(Err(_)) => {}
                    None => break,
                },
                _ = tokio::time::sleep(Duration::from_millis(200)), if ready.is_some() => {
                    let _ = ready.take().map(|r| r.send(()));
                }
            }
        }
    });
    ready_rx.await.ok();

    let keys = SessionKeys::generate();
    let auth = OidcAuthenticator::discover_with(
        OidcConfig {
            issuer_url: env.dex().expect("dex").issuer().to_owned(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.to_owned().into(),
            callback_url: callback.clone(),
            ca_pem: None,
        },
        OidcOptions {
            device_client_id: Some(DEVICE_CLIENT_ID.into()),
            ..OidcOptions::default()
        },
    )
    .await
    .expect("discover Dex");
    let backend = TemplateBackend::start(
        client.clone(),
        auth,
        TemplateBackendConfig {
            pretty_name: "Test Provider".into(),
            consumer_scope: klutch_sdk::api::export::Scope::Namespaced,
            cluster_scoped_isolation: klutch_sdk::api::export::ClusterScopedIsolation::Prefixed,
        },
    )
    .await
    .expect("start the template backend");
    let spaces = Arc::new(BindingSpaces::new(
        client.clone(),
        BindingSpaceConfig {
            namespace_prefix: "cluster".into(),
            pretty_name: "Test Provider".into(),
            external: ExternalCluster {
                server: cluster.url().to_owned(),
                ca_pem: Some(cluster.ca_pem().to_owned()),
                server_name: None,
            },
            token_timeout: Duration::from_secs(30),
        },
    ));
    let mut config = ServerConfig::new(keys.clone());
    config.callback_url = Some(callback);
    let router = Server::new(backend.clone(), spaces, config)
        .device_redemptions_in(client.clone(), "default")
        .router();
    // Served as example-backend serves it: timeouts, connection limit, peer addresses.
    let server = klutch_sdk::runtime::health::Server::bind(([127, 0, 0, 1], port).into())
        .await
        .expect("bind backend port");
    tokio::spawn(async move {
        server
            .serve_with(
                router,
                klutch_sdk::runtime::health::ServeOptions::default(),
                None,
                std::future::pending::<()>(),
            )
            .await
            .expect("serve")
    });
    let ctl_client = client.clone();
    tokio::spawn(async move {
        // Shorter export-request timings than the spec's 1 and 10 minutes, so tests see them.
        let timing = klutch_sdk::backend::controllers::Timing {
            fail_after: Duration::from_secs(FAIL_AFTER_SECS),
            collect_after: Duration::from_secs(COLLECT_AFTER_SECS),
        };
        klutch_sdk::backend::controllers::run_under_lease_with(
            ctl_client,
            backend,
            "default",
            "replica-1",
            timing,
        )
        .await
        .expect("controllers");
    });
    Fixture {
        env,
        base,
        keys,
        crbs_seen,
    }
}

/// The whole browser flow for `email` on consumer cluster `cid`, up to the BindingResponse.
pub async fn browser_bind(
    f: &Fixture,
    email: &str,
    cid: &str,
    plural: &str,
) -> (Browser, BindingResponse) {
    let mut b = Browser::new().unwrap();
    let sid = klutch_sdk::backend::state::random_token(22);
    let start = b
        .get(&format!("{}/authorize?p=53121&s={sid}&c={cid}", f.base))
        .await
        .unwrap();
    assert_eq!(start.status, 302, "{}", start.body);
    let callback = b
        .login_at_dex(start, email, PASSWORD, &format!("{}/callback", f.base))
        .await
        .unwrap();
    let after = b.get(&callback).await.unwrap();
    assert_eq!(after.status, 302, "callback: {}", after.body);
    assert_eq!(
        after.location.as_deref(),
        Some(format!("{}/resources?s={sid}", f.base).as_str())
    );
    // The catalogue fills from watches; wait until our CRD is offered.
    let mut link = None;
    for _ in 0..100 {
        let page = b
            .get(&format!("{}/resources?s={sid}", f.base))
            .await
            .unwrap();
        assert_eq!(page.status, 200, "{}", page.body);
        link = bind_link(&page.body, plural);
        if link.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let link = link.unwrap_or_else(|| panic!("{plural} is never offered"));
    let bound = b.get(&format!("{}{link}", f.base)).await.unwrap();
    assert_eq!(bound.status, 302, "bind: {}", bound.body);
    let location = bound.location.unwrap();
    assert!(
        location.starts_with("http://localhost:53121/callback?response="),
        "{location}"
    );
    let response = BindingResponse::decode(&query_param(&location, "response").unwrap())
        .expect("a BindingResponse");
    assert_eq!(
        response
            .authentication
            .oauth2_code_grant
            .as_ref()
            .unwrap()
            .sid,
        sid
    );
    (b, response)
}

/// A client from an issued kubeconfig, and its namespace.
pub async fn tenant_client(response: &BindingResponse) -> (kube::Client, String) {
    let yaml = String::from_utf8(response.kubeconfig.clone()).unwrap();
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig parses");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kubeconfig is usable");
    let ns = config.default_namespace.clone();
    (kube::Client::try_from(config).unwrap(), ns)
}

pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    klutch_sdk::testenv::eventually(what, WAIT, probe)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

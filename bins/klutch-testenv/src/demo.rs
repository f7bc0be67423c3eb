//! `klutch-testenv demo`: the whole Klutch flow on one machine, narrated.
//!
//! A control-plane cluster offers `PostgresqlInstance` (the a9s claim, `anynines.com/v1`) through
//! the reference backend with OIDC login at Dex; `kubectl bind` binds it into an app cluster,
//! where the konnector syncs an instance up to the control plane and its status back down.
//! Backend, konnector and CLI run inside this process (the same library code the binaries are
//! thin wrappers of); the clusters and Dex are real processes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use klutch_a9s::claims::postgresql::PostgresqlInstance;
use klutch_a9s::claims::xrd::{claim_crd, xrd};
use klutch_sdk::api::APIServiceExportTemplate;
use klutch_sdk::backend::controllers::run_under_lease;
use klutch_sdk::backend::{
    BindingSpaceConfig, BindingSpaces, ExternalCluster, OidcAuthenticator, OidcConfig, Server,
    ServerConfig, SessionKeys, TemplateBackend, TemplateBackendConfig,
};
use klutch_sdk::konnector::Konnector;
use klutch_sdk::testenv::browser::Browser;
use klutch_sdk::testenv::{
    Binaries, DexClient, DexConfig, DexUser, TestEnv, free_port, install_crd,
};
use kube::api::{Api, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::json;

/// The demo's user at Dex.
const USER: &str = "demo@example.com";
const PASSWORD: &str = "password";
const CLIENT_ID: &str = "klutch-backend";
const CLIENT_SECRET: &str = "klutch-demo-secret";
/// How long each step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(180);

/// Flags of `klutch-testenv demo`.
#[derive(Debug, clap::Args)]
pub struct Demo {
    /// Log in yourself: open the printed URL in a browser (Dex user demo@example.com, password
    /// "password") instead of letting a scripted browser do it.
    #[arg(long)]
    pub manual_login: bool,

    /// Directory with kube-apiserver, kube-controller-manager, kubectl, etcd and dex.
    #[arg(long, env = "KLUTCH_TESTBIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Copy each cluster's admin kubeconfig to DIR/<cluster>.kubeconfig (kept after exit).
    #[arg(long, value_name = "DIR")]
    pub kubeconfig_dir: Option<PathBuf>,

    /// Stop this many seconds after the demo finished instead of waiting for Ctrl-C
    /// (0: stop right away; for scripts and tests).
    #[arg(long, value_name = "SECONDS")]
    pub exit_after: Option<u64>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn step(n: u8, text: &str) {
    eprintln!("\n▶ {n}. {text}");
}

fn note(text: impl AsRef<str>) {
    eprintln!("   {}", text.as_ref());
}

async fn eventually<T, F, Fut>(what: &str, probe: F) -> Result<T, BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    Ok(klutch_sdk::testenv::eventually(what, STEP_TIMEOUT, probe).await?)
}

/// Runs the demo; returns when it is over (after Ctrl-C, SIGTERM or `--exit-after`).
pub async fn run(demo: Demo) -> Result<(), BoxError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let started = Instant::now();

    step(
        1,
        "Start a control-plane cluster, an app cluster and Dex (real processes on 127.0.0.1)",
    );
    let port = free_port()?;
    let backend_url = format!("http://127.0.0.1:{port}");
    let callback = format!("{backend_url}/callback");
    let mut builder = TestEnv::builder()
        .cluster("control-plane")
        .cluster("app")
        .dex(DexConfig {
            users: vec![DexUser::new(USER, PASSWORD)],
            clients: vec![DexClient::confidential(
                CLIENT_ID,
                CLIENT_SECRET,
                &[&callback],
            )],
        });
    if let Some(dir) = &demo.bin_dir {
        builder = builder.binaries(Binaries::from_dir(dir));
    }
    let env = builder.start().await?;
    let kubeconfig = |name: &str| -> Result<PathBuf, BoxError> {
        Ok(match &demo.kubeconfig_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(format!("{name}.kubeconfig"));
                env[name].admin().write_kubeconfig(&path)?;
                path
            }
            None => env[name].kubeconfig_path().to_owned(),
        })
    };
    let (cp_kubeconfig, app_kubeconfig) = (kubeconfig("control-plane")?, kubeconfig("app")?);
    note(format!(
        "control-plane {}  (kubeconfig {})",
        env["control-plane"].url(),
        cp_kubeconfig.display()
    ));
    note(format!(
        "app           {}  (kubeconfig {})",
        env["app"].url(),
        app_kubeconfig.display()
    ));
    note(format!(
        "dex           {}",
        env.dex().map(|d| d.issuer()).unwrap_or_default()
    ));
    let cp = env["control-plane"].client().await?;
    let app = env["app"].client().await?;

    step(
        2,
        "Offer PostgresqlInstance (anynines.com/v1) on the control plane",
    );
    for crd in klutch_sdk::api::crds() {
        install_crd(&cp, &crd).await?;
    }
    let claim = claim_crd(&xrd::<PostgresqlInstance>()?)?;
    install_crd(&cp, &claim).await?;
    let template: APIServiceExportTemplate = serde_json::from_value(json!({
        "apiVersion": "example-backend.klutch.anynines.com/v1alpha1",
        "kind": "APIServiceExportTemplate",
        "metadata": { "name": "postgresqlinstances", "namespace": "default" },
        "spec": { "APIServiceSelector": { "group": "anynines.com", "resource": "postgresqlinstances" } },
    }))?;
    Api::<APIServiceExportTemplate>::namespaced(cp.clone(), "default")
        .create(&PostParams::default(), &template)
        .await?;
    note("klutch's CRDs, the PostgresqlInstance claim CRD and an APIServiceExportTemplate for it");

    step(
        3,
        "Start the reference backend (OIDC login at Dex) and the konnector (in the app cluster's place)",
    );
    let auth = OidcAuthenticator::discover(OidcConfig {
        issuer_url: env.dex().ok_or("Dex did not start")?.issuer().to_owned(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.to_owned().into(),
        callback_url: callback.clone(),
        ca_pem: None,
    })
    .await?;
    let backend = TemplateBackend::start(
        cp.clone(),
        auth,
        TemplateBackendConfig {
            pretty_name: "klutch demo".into(),
            consumer_scope: klutch_sdk::api::export::Scope::Namespaced,
            cluster_scoped_isolation: klutch_sdk::api::export::ClusterScopedIsolation::Prefixed,
        },
    )
    .await?;
    let spaces = Arc::new(BindingSpaces::new(
        cp.clone(),
        BindingSpaceConfig {
            namespace_prefix: "cluster".into(),
            pretty_name: "klutch demo".into(),
            external: ExternalCluster {
                server: env["control-plane"].url().to_owned(),
                ca_pem: Some(env["control-plane"].ca_pem().to_owned()),
                server_name: None,
            },
            token_timeout: Duration::from_secs(30),
        },
    ));
    let mut config = ServerConfig::new(SessionKeys::generate());
    config.callback_url = Some(callback);
    let router = Server::new(backend.clone(), spaces, config).router();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    let controllers = cp.clone();
    tokio::spawn(async move { run_under_lease(controllers, backend, "default", "demo").await });
    note(format!("backend   {backend_url}/export"));

    let konnector = Konnector::builder(app.clone()).events(Some("demo")).build();
    konnector.install_crd().await?;
    let konnector = tokio::spawn(konnector.run(std::future::pending()));
    note("konnector watching the app cluster");

    step(4, "kubectl bind the API into the app cluster");
    let export = format!("{backend_url}/export");
    let app_kc = app_kubeconfig.to_string_lossy().into_owned();
    note(format!(
        "$ kubectl bind {export} --kubeconfig {app_kc} --accept-claims=all --skip-konnector"
    ));
    let mut io = kubectl_bind::Io::stdio();
    io.browser = Box::new(|_| false);
    let (urls_tx, mut urls) = tokio::sync::mpsc::unbounded_channel();
    io.login_urls = Some(urls_tx);
    let cli = tokio::spawn(kubectl_bind::run(
        [
            "kubectl-bind".to_owned(),
            export,
            "--kubeconfig".into(),
            app_kc,
            "--accept-claims=all".into(),
            "--skip-konnector".into(),
        ],
        io,
    ));
    let login = urls
        .recv()
        .await
        .ok_or("kubectl bind ended before it printed a login URL")?;
    if demo.manual_login {
        note(format!(
            "open {login} and log in as {USER} / {PASSWORD}, then pick postgresqlinstances"
        ));
    } else {
        note(format!(
            "a scripted browser logs in at Dex as {USER} and picks postgresqlinstances"
        ));
        let mut browser = Browser::new()?;
        browser
            .bind(
                &login,
                USER,
                PASSWORD,
                "postgresqlinstances",
                "http://localhost:",
            )
            .await?;
    }
    let code = cli.await?;
    if code != 0 {
        return Err(format!("kubectl bind failed with exit code {code}").into());
    }

    step(
        5,
        "Create a PostgresqlInstance in the app cluster; the konnector copies it up",
    );
    Api::<Namespace>::all(app.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("shop".into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await?;
    let ar = ApiResource {
        group: "anynines.com".into(),
        version: "v1".into(),
        api_version: "anynines.com/v1".into(),
        kind: "PostgresqlInstance".into(),
        plural: "postgresqlinstances".into(),
    };
    let instance: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "anynines.com/v1",
        "kind": "PostgresqlInstance",
        "metadata": { "name": "orders", "namespace": "shop" },
        "spec": { "service": "a9s-postgresql17", "plan": "postgresql-single-small", "compositionRef": { "name": "a9s-postgresql" } },
    }))?;
    let consumer = Api::<DynamicObject>::namespaced_with(app.clone(), "shop", &ar);
    eventually("the app cluster to serve postgresqlinstances", || async {
        consumer
            .create(&PostParams::default(), &instance)
            .await
            .ok()
    })
    .await?;
    note("app: shop/orders created (service a9s-postgresql17, plan postgresql-single-small)");
    let everywhere = Api::<DynamicObject>::all_with(cp.clone(), &ar);
    let copy = eventually("the control-plane copy", || async {
        let list = everywhere.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|o| o.metadata.name.as_deref() == Some("orders"))
    })
    .await?;
    let copy_ns = copy.metadata.namespace.clone().unwrap_or_default();
    note(format!(
        "control plane: {copy_ns}/orders appeared (the tenant's service namespace)"
    ));

    step(
        6,
        "The control plane reports status; the konnector copies it down",
    );
    note("(standing in for Crossplane and provider-anynines, the demo writes the status itself)");
    Api::<DynamicObject>::namespaced_with(cp.clone(), &copy_ns, &ar)
        .patch_status(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "managed": { "state": "succeeded" } } })),
        )
        .await?;
    eventually("the status in the app cluster", || async {
        let o = consumer.get("orders").await.ok()?;
        (o.data["status"]["managed"]["state"] == "succeeded").then_some(())
    })
    .await?;
    note("app: shop/orders has status.managed.state = succeeded");

    let kubectl = Binaries::find()
        .and_then(|b| b.kubectl())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "kubectl".into());
    eprintln!(
        "\n✔ The whole flow ran in {:.0}s. Look around:",
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "   {kubectl} --kubeconfig {} get postgresqlinstances,apiservicebindings -A",
        app_kubeconfig.display()
    );
    eprintln!(
        "   {kubectl} --kubeconfig {} get postgresqlinstances,apiserviceexports,clusterbindings -A",
        cp_kubeconfig.display()
    );

    let deadline = async {
        match demo.exit_after {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => {
                eprintln!("Press Ctrl-C to stop.");
                std::future::pending().await
            }
        }
    };
    tokio::select! {
        _ = interrupt.recv() => eprintln!("klutch-testenv: interrupted; stopping"),
        _ = term.recv() => eprintln!("klutch-testenv: terminated; stopping"),
        () = deadline => {}
    }
    konnector.abort();
    drop(env);
    eprintln!("klutch-testenv: stopped");
    Ok(())
}

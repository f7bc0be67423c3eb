//! `klutch-testenv demo`: the whole Klutch journey on one machine, narrated.
//!
//! A control-plane cluster runs Crossplane core, Klutch's configuration package and
//! provider-anynines (in front of the a9s development broker on a real PostgreSQL server, or with
//! `--fake-broker` a fake a9s broker and Backup Manager) and offers the claims through the
//! reference backend with OIDC login at Dex; `kubectl bind` binds `PostgresqlInstance` and
//! `ServiceBinding` into an app cluster, where the konnector syncs claims up and their status
//! and credentials down; the last step opens the database with the credentials Secret that
//! arrived in the app cluster and runs `select version()`. Everything is
//! [`klutch_testenv::journey`], the fixture the end-to-end tests use; the clusters, Dex,
//! Crossplane and PostgreSQL are real processes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use klutch_a9s::claims::ServiceInstanceType;
use klutch_a9s::claims::binding::{ServiceBinding, ServiceBindingSpec, creds_secret_name};
use klutch_a9s::claims::postgresql::{
    PostgresqlInstance, PostgresqlInstanceSpec, PostgresqlPlan, PostgresqlService,
};
use klutch_osb::testing::Route;
use klutch_sdk::testenv::Binaries;
use klutch_testenv::journey::{
    CONTROL_PLANE, Journey, JourneyConfig, PASSWORD, PostgresqlBroker, USER,
};
use kube::api::{Api, DynamicObject, ListParams, ObjectMeta, PostParams};

/// How long each step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(180);

/// Flags of `klutch-testenv demo`.
#[derive(Debug, clap::Args)]
pub struct Demo {
    /// Log in yourself: open the printed URLs in a browser (Dex user demo@example.com, password
    /// "password") instead of letting a scripted browser do it.
    #[arg(long)]
    pub manual_login: bool,

    /// Directory with kube-apiserver, kube-controller-manager, kubectl, etcd, dex,
    /// crossplane-core, function-patch-and-transform and crossplane-crds/.
    #[arg(long, env = "KLUTCH_TESTBIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Copy each cluster's admin kubeconfig to DIR/CLUSTER.kubeconfig (kept after exit).
    #[arg(long, value_name = "DIR")]
    pub kubeconfig_dir: Option<PathBuf>,

    /// Put a fake a9s broker behind PostgreSQL instead of the development broker on a real
    /// PostgreSQL server (for machines without Debian's `postgresql` package): the credentials
    /// are made up, so the last step (`select version()`) is skipped.
    #[arg(long)]
    pub fake_broker: bool,

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

/// Opens a session (its connection runs on a task until the client is dropped).
async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, BoxError> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs the demo; returns when it is over (after Ctrl-C, SIGTERM or `--exit-after`).
pub async fn run(demo: Demo) -> Result<(), BoxError> {
    let stop = klutch_sdk::runtime::signals::shutdown();
    let started = Instant::now();

    let behind = if demo.fake_broker {
        "a fake a9s broker"
    } else {
        "the a9s development broker on a real PostgreSQL server"
    };
    step(
        1,
        &format!(
            "Start a control plane (with Crossplane core, the configuration package and \
             provider-anynines in front of {behind}), an app cluster and Dex"
        ),
    );
    let (urls_tx, mut urls) = tokio::sync::mpsc::unbounded_channel();
    let config = JourneyConfig {
        bin_dir: demo.bin_dir.clone(),
        bind: Vec::new(),
        login_urls: demo.manual_login.then_some(urls_tx),
        echo_bind: true,
        postgresql: if demo.fake_broker {
            PostgresqlBroker::Fake
        } else {
            PostgresqlBroker::DevBroker
        },
        ..JourneyConfig::default()
    };
    if demo.manual_login {
        tokio::spawn(async move {
            while let Some(url) = urls.recv().await {
                note(format!("open {url} and log in as {USER} / {PASSWORD}"));
            }
        });
    }
    let journey = Journey::start(config).await?;
    let env = journey.env();
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
    let (cp_kubeconfig, app_kubeconfig) = (kubeconfig(CONTROL_PLANE)?, kubeconfig("app")?);
    note(format!(
        "control-plane {}  (kubeconfig {})",
        env[CONTROL_PLANE].url(),
        cp_kubeconfig.display()
    ));
    note(format!(
        "app           {}  (kubeconfig {})",
        env["app"].url(),
        app_kubeconfig.display()
    ));
    note(format!(
        "crossplane    core log {}",
        journey.crossplane().core_log().display()
    ));
    note(format!(
        "backend       {}/export   dex {}",
        journey.backend_url(),
        env.dex().map(|d| d.issuer()).unwrap_or_default()
    ));
    if let (Some(broker), Some(pg)) = (journey.dev_broker(), journey.postgres()) {
        note(format!(
            "a9s broker    {} (development broker)   PostgreSQL on 127.0.0.1:{}",
            broker.url(),
            pg.port()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "?".into())
        ));
    }

    step(
        2,
        "kubectl bind postgresqlinstances and servicebindings into the app cluster",
    );
    for plural in ["postgresqlinstances", "servicebindings"] {
        note(format!(
            "$ kubectl bind {}/export --kubeconfig {} --accept-claims=all --skip-konnector  → {plural}",
            journey.backend_url(),
            app_kubeconfig.display()
        ));
        journey.bind(plural).await?;
    }
    if !demo.manual_login {
        note(format!(
            "(a scripted browser logged in at Dex as {USER} and picked each resource)"
        ));
    }

    step(
        3,
        "Create a PostgresqlInstance in the app cluster and follow it through the chain",
    );
    let app = journey.app().await?;
    let cp = journey.control_plane().await?;
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
    let mut instance = PostgresqlInstance::new(
        "orders",
        PostgresqlInstanceSpec::new(
            PostgresqlService::A9sPostgresql17,
            PostgresqlPlan::SingleSmall,
        )
        .a9s(),
    );
    instance.metadata.namespace = Some("shop".into());
    let instances = Api::<PostgresqlInstance>::namespaced(app.clone(), "shop");
    eventually("the app cluster to serve postgresqlinstances", || async {
        instances
            .create(&PostParams::default(), &instance)
            .await
            .ok()
    })
    .await?;
    note("app: shop/orders created (service a9s-postgresql17, plan postgresql-single-small)");
    let everywhere = Api::<PostgresqlInstance>::all(cp.clone());
    let copy = eventually("the control-plane copy", || async {
        let list = everywhere.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|o| o.metadata.name.as_deref() == Some("orders"))
    })
    .await?;
    note(format!(
        "control plane: {}/orders, the konnector's copy in the tenant's service namespace",
        copy.metadata.namespace.clone().unwrap_or_default()
    ));
    let xr_resource = kube::api::ApiResource {
        group: "anynines.com".into(),
        version: "v1".into(),
        api_version: "anynines.com/v1".into(),
        kind: "XPostgresqlInstance".into(),
        plural: "xpostgresqlinstances".into(),
    };
    let xrs = Api::<DynamicObject>::all_with(cp.clone(), &xr_resource);
    let xr = eventually("Crossplane's composite resource", || async {
        xrs.list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .next()
    })
    .await?;
    note(format!(
        "crossplane: claim → XPostgresqlInstance {} → dataservices.anynines.com ServiceInstance (function-patch-and-transform)",
        xr.metadata.name.clone().unwrap_or_default()
    ));
    match journey.postgres() {
        Some(pg) => {
            // The development broker's provision creates the instance's database.
            let admin = connect(&pg.url().parse()?).await?;
            let database = eventually("the provision at the broker", || async {
                let rows = admin
                    .query(
                        "SELECT datname FROM pg_database WHERE datname ~ '^a9s_i[0-9]+$'",
                        &[],
                    )
                    .await
                    .ok()?;
                rows.first().map(|r| r.get::<_, String>(0))
            })
            .await?;
            note(format!(
                "development broker: database {database} and its owner role created on PostgreSQL"
            ));
        }
        None => {
            let broker = journey.broker(ServiceInstanceType::Postgresql);
            eventually("the provision at the broker", || async {
                (broker.osb().count(Route::Provision) > 0).then_some(())
            })
            .await?;
        }
    }
    note("provider-anynines: PUT /v2/service_instances/… at the a9s broker (asynchronous, polled)");
    let ready = eventually("Ready=True in the app cluster", || async {
        let o = instances.get("orders").await.ok()?;
        o.status.as_ref().is_some_and(|s| s.is_ready()).then_some(o)
    })
    .await?;
    note(format!(
        "app: shop/orders is Ready=True, status.managed.state = {}",
        ready
            .status
            .as_ref()
            .and_then(|s| s.managed_state())
            .unwrap_or("?")
    ));

    step(
        4,
        "Create a ServiceBinding; the credentials Secret arrives in the app cluster",
    );
    let mut binding = ServiceBinding::new(
        "orders-app",
        ServiceBindingSpec::new("orders", ServiceInstanceType::Postgresql).a9s(),
    );
    binding.metadata.namespace = Some("shop".into());
    Api::<ServiceBinding>::namespaced(app.clone(), "shop")
        .create(&PostParams::default(), &binding)
        .await?;
    let secret_name = creds_secret_name("orders-app");
    let secrets = Api::<Secret>::namespaced(app.clone(), "shop");
    let secret = eventually("the credentials Secret in the app cluster", || async {
        secrets
            .get_opt(&secret_name)
            .await
            .ok()?
            .filter(|s| s.data.as_ref().is_some_and(|d| !d.is_empty()))
    })
    .await?;
    let data = secret.data.unwrap_or_default();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    note(format!(
        "app: Secret shop/{secret_name} with keys {} (values not shown)",
        keys.join(", ")
    ));

    if journey.dev_broker().is_some() {
        step(
            5,
            "Open the database with the Secret's host, port, username, password and name",
        );
        let field = |key: &str| -> Result<String, BoxError> {
            let value = data
                .get(key)
                .ok_or_else(|| format!("the Secret has no `{key}`"))?;
            Ok(String::from_utf8(value.0.clone())?)
        };
        let mut creds = tokio_postgres::Config::new();
        creds
            .host(field("host")?)
            .port(field("port")?.parse()?)
            .user(field("username")?)
            .password(field("password")?)
            .dbname(field("name")?);
        let db = connect(&creds).await?;
        let version: String = db.query_one("select version()", &[]).await?.get(0);
        note("app → PostgreSQL: select version()");
        note(format!("   {version}"));
    }

    let kubectl = Binaries::find()
        .and_then(|b| b.kubectl())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "kubectl".into());
    eprintln!(
        "\n✔ The whole journey ran in {:.0}s. Look around:",
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "   {kubectl} --kubeconfig {} get postgresqlinstances,servicebindings,secrets -n shop",
        app_kubeconfig.display()
    );
    eprintln!(
        "   {kubectl} --kubeconfig {} get managed,composite,claim -A",
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
        signal = stop => eprintln!("klutch-testenv: {}; stopping", super::stopped_by(signal)),
        () = deadline => {}
    }
    drop(journey);
    eprintln!("klutch-testenv: stopped");
    Ok(())
}

//! The whole journey on one machine, as one reusable fixture: a claim applied in an app cluster
//! becomes a data service with credentials, through every real part.
//!
//! [`Journey::start`] brings up, in this order:
//!
//! 1. a [`TestEnv`] with clusters `control-plane` and `app` and Dex, and Crossplane core plus
//!    function-patch-and-transform on the control plane ([`TestEnvBuilder::crossplane`]);
//! 2. Klutch's configuration package on the control plane: the XRDs and compositions of
//!    `crossplane-api/` (generated from `klutch_a9s::claims::package`), applied and waited for
//!    until Crossplane offers every claim kind;
//! 3. behind provider-anynines, one [`FakeA9sBroker`] and one [`FakeBackupManager`] per a9s
//!    data service (`klutch_a9s::testing`), with a catalogue of every service and plan the claims
//!    allow, and the ProviderConfigs `<type>-service-broker` / `<type>-backup-manager` the
//!    compositions name; with [`JourneyConfig::postgresql`] set to
//!    [`PostgresqlBroker::DevBroker`], PostgreSQL is served instead by the development broker
//!    (`klutch_a9s::devbroker`, OSB and Backup Manager on one listener) on a real PostgreSQL
//!    server ([`Postgres`]) the journey starts, so the credentials that arrive open a database;
//! 4. provider-anynines' engine (`klutch_a9s::provider::run::controllers`, what
//!    `bins/provider-anynines` runs) as the managed-resource controller, in this process so
//!    tests can restart it;
//! 5. the reference backend (OIDC login at Dex) with an `APIServiceExportTemplate` per claim
//!    kind (`servicebindings` claims Secrets and ConfigMaps, as Klutch v1.5's templates), and
//!    the konnector engine for the app cluster;
//! 6. `kubectl bind` for each kind in [`JourneyConfig::bind`], logged in by the scripted browser.
//!
//! Then a claim created in the app cluster travels: konnector → control-plane copy → Crossplane
//! claim → XR → managed resource → provider → broker, and back: status, and for a
//! `ServiceBinding` the connection Secret.
//!
//! Used by `klutch-testenv demo` (`scripts/demo`), by `tests/journey.rs` and meant for the
//! benchmarks: keep its API small. It lives in this crate rather than in `klutch-a9s` because it
//! needs `kubectl bind` (a binary crate's library) and every part of `klutch-sdk`; `klutch-a9s`
//! must not depend on those.
//!
//! ```no_run
//! # async fn demo() -> Result<(), klutch_testenv::journey::Error> {
//! use klutch_testenv::journey::{Journey, JourneyConfig};
//! let journey = Journey::start(JourneyConfig::default()).await?;
//! let app = journey.app().await?;
//! // create a PostgresqlInstance in `app`, wait for Ready=True, bind it, read the Secret ...
//! println!("broker instances: {}", journey.broker(klutch_a9s::claims::ServiceInstanceType::Postgresql).osb().requests().len());
//! # let _ = app; Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_a9s::claims::ServiceInstanceType;
use klutch_a9s::credentials::DataServiceKind;
use klutch_a9s::devbroker::{DevBroker, DevBrokerConfig};
use klutch_a9s::provider::api::provider_config::{CredentialSelectors, ProviderCredentials};
use klutch_a9s::provider::api::{
    CredentialsSource, ProviderConfig, ProviderConfigSpec, SecretKeySelector, ServiceType,
};
use klutch_a9s::provider::metrics::Metrics;
use klutch_a9s::testing::{
    FakeA9sBroker, FakeA9sBrokerConfig, FakeBackupManager, FakeBackupManagerConfig,
};
use klutch_osb::testing::{FakeBrokerConfig, Mode};
use klutch_sdk::api::APIServiceExportTemplate;
use klutch_sdk::backend::controllers::run_under_lease;
use klutch_sdk::backend::{
    BindingSpaceConfig, BindingSpaces, ExternalCluster, OidcAuthenticator, OidcConfig, Server,
    ServerConfig, SessionKeys, TemplateBackend, TemplateBackendConfig,
};
use klutch_sdk::konnector::Konnector;
use klutch_sdk::testenv::browser::Browser;
use klutch_sdk::testenv::postgres::Postgres;
use klutch_sdk::testenv::{
    Binaries, Crossplane, DexClient, DexConfig, DexUser, TestEnv, TestEnvBuilder, free_port,
    install_crd,
};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The control-plane cluster's name.
pub const CONTROL_PLANE: &str = "control-plane";
/// The app cluster's name.
pub const APP: &str = "app";
/// The Dex user that logs in for `kubectl bind`.
pub const USER: &str = "demo@example.com";
/// Its password.
pub const PASSWORD: &str = "password";
/// The backend's OIDC client at Dex.
const CLIENT_ID: &str = "klutch-backend";
const CLIENT_SECRET: &str = "klutch-demo-secret";
/// Where ProviderConfig credentials and the export templates live on the control plane.
const SYSTEM_NAMESPACE: &str = klutch_sdk::testenv::CROSSPLANE_NAMESPACE;
/// The basic-auth user of every fake broker and Backup Manager.
pub const FAKE_USER: &str = "admin";
/// The fake brokers' basic-auth password.
pub const FAKE_PASSWORD: &str = "secret";

/// What can go wrong while starting or driving the journey.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The test environment (clusters, Dex, Crossplane) failed.
    #[error(transparent)]
    Testenv(#[from] klutch_sdk::testenv::Error),
    /// A Kubernetes API call failed.
    #[error("{what}")]
    Api {
        /// The call.
        what: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },
    /// A part of the journey (backend, fake, konnector, browser) failed to start or answer.
    #[error("{what}")]
    Part {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `kubectl bind` failed.
    #[error("kubectl bind {resource} exited with {code}:\n{stderr}")]
    Bind {
        /// The resource being bound.
        resource: String,
        /// Its exit code.
        code: u8,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn part<E>(what: impl Into<String>) -> impl FnOnce(E) -> Error
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let what = what.into();
    move |source| Error::Part {
        what,
        source: source.into(),
    }
}

fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { what, source }
}

/// How the journey is set up.
#[derive(Clone, Debug)]
pub struct JourneyConfig {
    /// Where the test binaries are (default: [`Binaries::find`]).
    pub bin_dir: Option<PathBuf>,
    /// The claim kinds (plural resource names of `anynines.com`) to bind into the app cluster at
    /// start; [`Journey::bind`] binds more later. Default: every kind of the package.
    pub bind: Vec<String>,
    /// How the fake brokers complete operations. Default: asynchronously, after 2 s, with
    /// `Retry-After: 1` on `last_operation`.
    pub broker_mode: Mode,
    /// provider-anynines' options. Default: 2 s polls, 5 s broker timeouts, 5 s catalogue TTL.
    pub provider: klutch_a9s::provider::Options,
    /// How long each wait of the start may take.
    pub start_timeout: Duration,
    /// When set, [`Journey::bind`] sends each login URL here and waits for someone to log in
    /// (as user [`USER`], password [`PASSWORD`]) instead of using the scripted browser.
    pub login_urls: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// Plans (names) the fake brokers leave out of their catalogues although the claims'
    /// schemas allow them: a claim with one of them meets a broker that does not know its plan.
    /// Default: none.
    pub unoffered_plans: Vec<String>,
    /// Let `kubectl bind` print to this process's stdout and stderr (the demo) instead of
    /// capturing its output for error messages (tests).
    pub echo_bind: bool,
    /// What answers for PostgreSQL behind provider-anynines. Default: a fake, like every other
    /// data service.
    pub postgresql: PostgresqlBroker,
    /// Run the konnector engine for the app cluster in this process (default). `false` only
    /// installs its CRD and leaves running a konnector to the caller (the `journey_claims`
    /// benchmark starts the binary, to measure its memory apart).
    pub konnector: bool,
}

/// What answers for the PostgreSQL data service behind provider-anynines
/// ([`JourneyConfig::postgresql`]). The other data services always have fakes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostgresqlBroker {
    /// A [`FakeA9sBroker`] and [`FakeBackupManager`]: made-up credentials, fault injection and
    /// request counts ([`Journey::broker`]).
    #[default]
    Fake,
    /// The development broker (`klutch_a9s::devbroker`) on a PostgreSQL server the journey
    /// starts (Debian's `postgresql` package, see `klutch_sdk::testenv::postgres`): its catalogue
    /// offers the `a9s-postgresql13/15/17` services and a9s plans of the package's
    /// `a9s-postgresql` composition, bindings are real login roles and backups `pg_dump`s.
    /// [`JourneyConfig::unoffered_plans`] and [`JourneyConfig::broker_mode`] do not apply to it.
    DevBroker,
}

impl Default for JourneyConfig {
    fn default() -> Self {
        JourneyConfig {
            bin_dir: None,
            bind: all_claim_plurals(),
            broker_mode: Mode::Async {
                duration: Duration::from_secs(2),
                retry_after: Some(1),
            },
            provider: klutch_a9s::provider::Options {
                poll: Duration::from_secs(2),
                broker_timeout: Duration::from_secs(5),
                backup_manager_timeout: Duration::from_secs(5),
                catalog_ttl: Duration::from_secs(5),
                ..klutch_a9s::provider::Options::default()
            },
            start_timeout: Duration::from_secs(180),
            login_urls: None,
            echo_bind: false,
            unoffered_plans: Vec::new(),
            postgresql: PostgresqlBroker::Fake,
            konnector: true,
        }
    }
}

/// The plural names of every claim kind of the configuration package.
pub fn all_claim_plurals() -> Vec<String> {
    claim_resources().into_iter().map(|r| r.plural).collect()
}

/// The `ApiResource`s of every claim kind (`anynines.com/v1`), from the package's XRDs'
/// `claimNames`.
pub fn claim_resources() -> Vec<ApiResource> {
    let group = klutch_a9s::claims::GROUP;
    let version = klutch_a9s::claims::VERSION;
    klutch_a9s::claims::package::xrds()
        .unwrap_or_default()
        .iter()
        .map(|xrd| {
            let names = &xrd["spec"]["claimNames"];
            let name = |key: &str| names[key].as_str().unwrap_or_default().to_owned();
            ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: format!("{group}/{version}"),
                kind: name("kind"),
                plural: name("plural"),
            }
        })
        .collect()
}

/// The `ApiResource` of the claim kind called `kind` (e.g. `PostgresqlInstance`) or with plural
/// `kind` (e.g. `postgresqlinstances`).
pub fn claim_resource(kind: &str) -> Option<ApiResource> {
    claim_resources()
        .into_iter()
        .find(|r| r.kind == kind || r.plural == kind)
}

/// The data service behind a service instance type.
pub fn data_service(kind: ServiceInstanceType) -> DataServiceKind {
    match kind {
        ServiceInstanceType::Keyvalue => DataServiceKind::Keyvalue,
        ServiceInstanceType::Postgresql => DataServiceKind::Postgresql,
        ServiceInstanceType::Mongodb => DataServiceKind::Mongodb,
        ServiceInstanceType::Search => DataServiceKind::Search,
        ServiceInstanceType::Logme2 => DataServiceKind::Logme2,
        ServiceInstanceType::Prometheus => DataServiceKind::Prometheus,
        ServiceInstanceType::Messaging => DataServiceKind::Messaging,
        ServiceInstanceType::Mariadb => DataServiceKind::Mariadb,
    }
}

/// Every service and plan name the claims of `kind` allow.
fn services_and_plans(kind: ServiceInstanceType) -> (Vec<&'static str>, Vec<&'static str>) {
    use klutch_a9s::claims::{
        keyvalue, logme2, mariadb, messaging, mongodb, postgresql, prometheus, search,
    };
    macro_rules! names {
        ($s:ty, $p:ty) => {
            (
                <$s>::ALL.iter().map(|v| v.as_str()).collect(),
                <$p>::ALL.iter().map(|v| v.as_str()).collect(),
            )
        };
    }
    match kind {
        ServiceInstanceType::Keyvalue => {
            names!(keyvalue::KeyvalueService, keyvalue::KeyvaluePlan)
        }
        ServiceInstanceType::Postgresql => {
            names!(postgresql::PostgresqlService, postgresql::PostgresqlPlan)
        }
        ServiceInstanceType::Mongodb => names!(mongodb::MongodbService, mongodb::MongodbPlan),
        ServiceInstanceType::Search => names!(search::SearchService, search::SearchPlan),
        ServiceInstanceType::Logme2 => names!(logme2::Logme2Service, logme2::Logme2Plan),
        ServiceInstanceType::Prometheus => {
            names!(prometheus::PrometheusService, prometheus::PrometheusPlan)
        }
        ServiceInstanceType::Messaging => {
            names!(messaging::MessagingService, messaging::MessagingPlan)
        }
        ServiceInstanceType::Mariadb => names!(mariadb::MariadbService, mariadb::MariadbPlan),
    }
}

/// An OSB catalogue with every service and plan of `kind` but the `unoffered` plans, as an a9s
/// broker of that data service offers them (ids `<name>-id`).
pub fn catalog(kind: ServiceInstanceType, unoffered: &[String]) -> Result<klutch_osb::Catalog> {
    let (services, plans) = services_and_plans(kind);
    let plans: Vec<Value> = plans
        .iter()
        .filter(|p| !unoffered.iter().any(|u| u == *p))
        .map(|p| json!({ "id": format!("{p}-id"), "name": p, "description": p, "free": true }))
        .collect();
    let services: Vec<Value> = services
        .iter()
        .map(|s| {
            json!({
                "id": format!("{s}-id"), "name": s, "description": s,
                "bindable": true, "instances_retrievable": true, "bindings_retrievable": true,
                "plan_updateable": true, "plans": plans,
            })
        })
        .collect();
    serde_json::from_value(json!({ "services": services })).map_err(part("build a catalogue"))
}

/// The development broker and the PostgreSQL server it manages (dropped in this order).
struct DevPostgresql {
    broker: DevBroker,
    server: Postgres,
}

/// provider-anynines' controllers as a task of this process.
struct ProviderTask {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// The whole journey, running; see the [module documentation](self). Dropping it stops every
/// part.
pub struct Journey {
    env: TestEnv,
    brokers: BTreeMap<ServiceInstanceType, FakeA9sBroker>,
    backup_managers: BTreeMap<ServiceInstanceType, FakeBackupManager>,
    dev: Option<DevPostgresql>,
    provider: Mutex<Option<ProviderTask>>,
    provider_options: klutch_a9s::provider::Options,
    metrics: Arc<Metrics>,
    backend_url: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    bound: Mutex<Vec<String>>,
    login_urls: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    echo_bind: bool,
    konnector: bool,
}

impl std::fmt::Debug for Journey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journey")
            .field("env", &self.env)
            .field("backend_url", &self.backend_url)
            .finish_non_exhaustive()
    }
}

impl Journey {
    /// Starts everything (see the [module documentation](self)) and binds
    /// [`JourneyConfig::bind`]. Takes about 30 s on 2 busy cores.
    pub async fn start(config: JourneyConfig) -> Result<Journey> {
        let started = Instant::now();
        let port = free_port()?;
        let backend_url = format!("http://127.0.0.1:{port}");
        let callback = format!("{backend_url}/callback");
        let mut builder: TestEnvBuilder = TestEnv::builder()
            .cluster(CONTROL_PLANE)
            .cluster(APP)
            .crossplane(CONTROL_PLANE)
            .start_timeout(config.start_timeout)
            .dex(DexConfig {
                users: vec![DexUser::new(USER, PASSWORD)],
                clients: vec![DexClient::confidential(
                    CLIENT_ID,
                    CLIENT_SECRET,
                    &[&callback],
                )],
            });
        if let Some(dir) = &config.bin_dir {
            builder = builder.binaries(Binaries::from_dir(dir));
        }
        // PostgreSQL's initdb runs while the clusters start.
        let (env, server) = tokio::join!(builder.start(), async {
            match config.postgresql {
                PostgresqlBroker::Fake => Ok(None),
                PostgresqlBroker::DevBroker => Postgres::builder().start().await.map(Some),
            }
        });
        let (env, server) = (env?, server?);
        tracing::info!(elapsed = ?started.elapsed(), "journey: clusters, Dex and Crossplane ready");
        let cp = env[CONTROL_PLANE].client().await?;

        // The provider's CRDs and klutch's own.
        for crd in klutch_a9s::provider::api::crds()
            .into_iter()
            .chain(klutch_sdk::api::crds())
        {
            install_crd(&cp, &crd).await?;
        }
        install_package(&cp, config.start_timeout).await?;
        tracing::info!(elapsed = ?started.elapsed(), "journey: configuration package offered");

        let mut brokers = BTreeMap::new();
        let mut backup_managers = BTreeMap::new();
        let mut dev = None;
        if let Some(server) = server {
            let mut broker = DevBrokerConfig::new(server.url(), FAKE_USER, FAKE_PASSWORD);
            broker.pg_bin_dir = server.bin_dir().map(ToOwned::to_owned);
            let broker = DevBroker::start(broker)
                .await
                .map_err(part("start the development broker"))?;
            let kind = ServiceInstanceType::Postgresql;
            // One listener serves the OSB API, the a9s extensions and the Backup Manager subset.
            for (name, service_type) in [
                (format!("{kind}-service-broker"), ServiceType::Servicebroker),
                (format!("{kind}-backup-manager"), ServiceType::Backupmanager),
            ] {
                provider_config(&cp, &name, &broker.url(), service_type).await?;
            }
            dev = Some(DevPostgresql { broker, server });
        }
        for &kind in ServiceInstanceType::ALL {
            if dev.is_some() && kind == ServiceInstanceType::Postgresql {
                continue;
            }
            let broker = FakeA9sBroker::start(FakeA9sBrokerConfig {
                osb: FakeBrokerConfig {
                    catalog: catalog(kind, &config.unoffered_plans)?,
                    mode: config.broker_mode.clone(),
                    basic_auth: Some((FAKE_USER.into(), FAKE_PASSWORD.into())),
                    ..FakeBrokerConfig::default()
                },
                kind: data_service(kind),
                ..FakeA9sBrokerConfig::default()
            })
            .await
            .map_err(part(format!("start the fake {kind} broker")))?;
            let bm = FakeBackupManager::start(FakeBackupManagerConfig {
                basic_auth: Some((FAKE_USER.into(), FAKE_PASSWORD.into())),
                queued_for: Duration::from_millis(500),
                running_for: Duration::from_secs(1),
                ..FakeBackupManagerConfig::default()
            })
            .await
            .map_err(part(format!("start the fake {kind} Backup Manager")))?;
            provider_config(
                &cp,
                &format!("{kind}-service-broker"),
                &broker.url(),
                ServiceType::Servicebroker,
            )
            .await?;
            provider_config(
                &cp,
                &format!("{kind}-backup-manager"),
                &bm.url(),
                ServiceType::Backupmanager,
            )
            .await?;
            brokers.insert(kind, broker);
            backup_managers.insert(kind, bm);
        }
        credentials_secret(&cp).await?;

        let mut journey = Journey {
            env,
            brokers,
            backup_managers,
            dev,
            provider: Mutex::new(None),
            provider_options: config.provider.clone(),
            metrics: Arc::new(Metrics::new()),
            backend_url: backend_url.clone(),
            tasks: Vec::new(),
            bound: Mutex::new(Vec::new()),
            login_urls: config.login_urls.clone(),
            echo_bind: config.echo_bind,
            konnector: config.konnector,
        };
        journey.start_provider().await?;
        journey.start_backend(port, &callback).await?;
        tracing::info!(elapsed = ?started.elapsed(), "journey: provider, backend and konnector running");
        for plural in &config.bind {
            journey.bind(plural).await?;
        }
        tracing::info!(elapsed = ?started.elapsed(), bound = ?config.bind, "journey ready");
        Ok(journey)
    }

    async fn start_backend(&mut self, port: u16, callback: &str) -> Result<()> {
        let cp = self.env[CONTROL_PLANE].client().await?;
        for plural in all_claim_plurals() {
            let mut spec = json!({
                "APIServiceSelector": { "group": klutch_a9s::claims::GROUP, "resource": plural },
            });
            if plural == "servicebindings" {
                // Klutch v1.5's template: the connection Secret travels back as a claimed
                // resource.
                spec["permissionClaims"] = json!([
                    { "group": "", "resource": "secrets", "version": "v1", "selector": { "owner": "Provider" } },
                    { "group": "", "resource": "configmaps", "version": "v1", "selector": { "owner": "Provider" } },
                ]);
            }
            let template: APIServiceExportTemplate = serde_json::from_value(json!({
                "apiVersion": "example-backend.klutch.anynines.com/v1alpha1",
                "kind": "APIServiceExportTemplate",
                "metadata": { "name": plural, "namespace": SYSTEM_NAMESPACE },
                "spec": spec,
            }))
            .map_err(part("build an APIServiceExportTemplate"))?;
            Api::<APIServiceExportTemplate>::namespaced(cp.clone(), SYSTEM_NAMESPACE)
                .patch(
                    &plural,
                    &PatchParams::apply("klutch-journey").force(),
                    &Patch::Apply(&template),
                )
                .await
                .map_err(api(format!("apply APIServiceExportTemplate {plural}")))?;
        }
        let auth = OidcAuthenticator::discover(OidcConfig {
            issuer_url: self
                .env
                .dex()
                .map(|d| d.issuer().to_owned())
                .unwrap_or_default(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.to_owned().into(),
            callback_url: callback.to_owned(),
            ca_pem: None,
        })
        .await
        .map_err(part("discover Dex"))?;
        let backend = TemplateBackend::start(
            cp.clone(),
            auth,
            TemplateBackendConfig {
                pretty_name: "klutch journey".into(),
                consumer_scope: klutch_sdk::api::export::Scope::Namespaced,
                cluster_scoped_isolation: klutch_sdk::api::export::ClusterScopedIsolation::Prefixed,
            },
        )
        .await
        .map_err(part("start the template backend"))?;
        let spaces = Arc::new(BindingSpaces::new(
            cp.clone(),
            BindingSpaceConfig {
                namespace_prefix: "cluster".into(),
                pretty_name: "klutch journey".into(),
                external: ExternalCluster {
                    server: self.env[CONTROL_PLANE].url().to_owned(),
                    ca_pem: Some(self.env[CONTROL_PLANE].ca_pem().to_owned()),
                    server_name: None,
                },
                token_timeout: Duration::from_secs(30),
            },
        ));
        let mut server = ServerConfig::new(SessionKeys::generate());
        server.callback_url = Some(callback.to_owned());
        let router = Server::new(backend.clone(), spaces, server).router();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(part(format!("listen on 127.0.0.1:{port}")))?;
        self.tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }));
        let controllers = cp.clone();
        self.tasks.push(tokio::spawn(async move {
            let _ = run_under_lease(controllers, backend, SYSTEM_NAMESPACE, "journey").await;
        }));

        let app = self.env[APP].client().await?;
        let konnector = Konnector::builder(app).events(Some("journey")).build();
        konnector
            .install_crd()
            .await
            .map_err(part("install the konnector's CRD"))?;
        if self.konnector {
            self.tasks
                .push(tokio::spawn(konnector.run(std::future::pending())));
        }
        Ok(())
    }

    /// `kubectl bind <backend>/export --accept-claims=all --skip-konnector` into the app
    /// cluster for claim kind `plural`, logged in at Dex by the scripted browser (or by a person,
    /// see [`JourneyConfig::login_urls`]). Binding a kind twice is a no-op.
    pub async fn bind(&self, plural: &str) -> Result<()> {
        if self
            .bound
            .lock()
            .expect("bound lock")
            .iter()
            .any(|b| b == plural)
        {
            return Ok(());
        }
        let export = format!("{}/export", self.backend_url);
        let app_kubeconfig = self.env[APP]
            .kubeconfig_path()
            .to_string_lossy()
            .into_owned();
        let (mut io, _out, err) = kubectl_bind::Io::capture("");
        if self.echo_bind {
            let stdio = kubectl_bind::Io::stdio();
            io.stdout = stdio.stdout;
            io.stderr = stdio.stderr;
        }
        let (urls_tx, mut urls) = tokio::sync::mpsc::unbounded_channel();
        io.login_urls = Some(urls_tx);
        let cli = tokio::spawn(kubectl_bind::run(
            [
                "kubectl-bind".to_owned(),
                export,
                "--kubeconfig".into(),
                app_kubeconfig,
                "--accept-claims=all".into(),
                "--skip-konnector".into(),
            ],
            io,
        ));
        let Some(login) = urls.recv().await else {
            let code = cli.await.map_err(part("run kubectl bind"))?;
            return Err(Error::Bind {
                resource: plural.to_owned(),
                code,
                stderr: err.contents(),
            });
        };
        match &self.login_urls {
            Some(urls) => {
                let _ = urls.send(login);
            }
            None => {
                let mut browser = Browser::new()?;
                browser
                    .bind(&login, USER, PASSWORD, plural, "http://localhost:")
                    .await?;
            }
        }
        let code = cli.await.map_err(part("run kubectl bind"))?;
        if code != 0 {
            return Err(Error::Bind {
                resource: plural.to_owned(),
                code,
                stderr: err.contents(),
            });
        }
        self.bound
            .lock()
            .expect("bound lock")
            .push(plural.to_owned());
        Ok(())
    }

    /// Starts provider-anynines' controllers (no-op when they run).
    pub async fn start_provider(&self) -> Result<()> {
        if self.provider.lock().expect("provider lock").is_some() {
            return Ok(());
        }
        let client = self.env[CONTROL_PLANE].client().await?;
        let (stop, rx) = oneshot::channel::<()>();
        let options = self.provider_options.clone();
        let metrics = self.metrics.clone();
        let task = tokio::spawn(async move {
            klutch_a9s::provider::run::controllers(client, options, metrics, async move {
                let _ = rx.await;
            })
            .await;
        });
        *self.provider.lock().expect("provider lock") = Some(ProviderTask { stop, task });
        Ok(())
    }

    /// Stops provider-anynines' controllers gracefully and waits (up to 30 s) until they end.
    pub async fn stop_provider(&self) {
        let taken = self.provider.lock().expect("provider lock").take();
        if let Some(ProviderTask { stop, task }) = taken {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }

    /// [`stop_provider`](Self::stop_provider), then [`start_provider`](Self::start_provider).
    pub async fn restart_provider(&self) -> Result<()> {
        self.stop_provider().await;
        self.start_provider().await
    }

    /// The test environment (clusters, Dex, Crossplane).
    pub fn env(&self) -> &TestEnv {
        &self.env
    }

    /// Crossplane on the control plane (restart core with it).
    pub fn crossplane(&self) -> &Crossplane {
        self.env
            .crossplane(CONTROL_PLANE)
            .expect("the journey runs Crossplane on the control plane")
    }

    /// A new admin client of the app cluster.
    pub async fn app(&self) -> Result<kube::Client> {
        Ok(self.env[APP].client().await?)
    }

    /// A new admin client of the control plane.
    pub async fn control_plane(&self) -> Result<kube::Client> {
        Ok(self.env[CONTROL_PLANE].client().await?)
    }

    /// The fake broker of data service `kind`.
    ///
    /// # Panics
    /// For PostgreSQL when it runs on the development broker ([`PostgresqlBroker::DevBroker`]).
    pub fn broker(&self, kind: ServiceInstanceType) -> &FakeA9sBroker {
        self.brokers
            .get(&kind)
            .unwrap_or_else(|| panic!("{kind} runs on the development broker, not a fake"))
    }

    /// The fake Backup Manager of data service `kind`.
    ///
    /// # Panics
    /// For PostgreSQL when it runs on the development broker ([`PostgresqlBroker::DevBroker`]).
    pub fn backup_manager(&self, kind: ServiceInstanceType) -> &FakeBackupManager {
        self.backup_managers
            .get(&kind)
            .unwrap_or_else(|| panic!("{kind} runs on the development broker, not a fake"))
    }

    /// The development broker behind PostgreSQL, with [`PostgresqlBroker::DevBroker`].
    pub fn dev_broker(&self) -> Option<&DevBroker> {
        self.dev.as_ref().map(|d| &d.broker)
    }

    /// The PostgreSQL server the development broker manages (its [`Postgres::url`] is the
    /// superuser's), with [`PostgresqlBroker::DevBroker`].
    pub fn postgres(&self) -> Option<&Postgres> {
        self.dev.as_ref().map(|d| &d.server)
    }

    /// provider-anynines' metrics (shared across provider restarts).
    pub fn provider_metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The reference backend's URL (`<url>/export` is what `kubectl bind` takes).
    pub fn backend_url(&self) -> &str {
        &self.backend_url
    }

    /// The last lines of Crossplane's logs, for failure reports.
    pub fn log_tails(&self, lines: usize) -> String {
        self.crossplane().log_tails(lines)
    }
}

impl Drop for Journey {
    fn drop(&mut self) {
        if let Some(p) = self.provider.lock().expect("provider lock").take() {
            p.task.abort();
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Applies the package's XRDs and compositions and waits until Crossplane serves every claim
/// kind.
async fn install_package(cp: &kube::Client, timeout: Duration) -> Result<()> {
    let files = klutch_a9s::claims::package::files().map_err(part("render the package"))?;
    let mut claims = Vec::new();
    for (path, text) in &files {
        if !path.ends_with(".yaml") || path.starts_with("examples/") {
            continue;
        }
        let doc: Value = serde_saphyr::from_str(text).map_err(part(format!("parse {path}")))?;
        let (group_version, kind) = (
            doc["apiVersion"].as_str().unwrap_or_default(),
            doc["kind"].as_str().unwrap_or_default(),
        );
        let plural = match kind {
            "CompositeResourceDefinition" => "compositeresourcedefinitions",
            "Composition" => "compositions",
            _ => continue,
        };
        let (group, version) = group_version.split_once('/').unwrap_or(("", group_version));
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: group_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let obj: DynamicObject =
            serde_json::from_value(doc.clone()).map_err(part(format!("read {path}")))?;
        let name = obj.metadata.name.clone().unwrap_or_default();
        Api::<DynamicObject>::all_with(cp.clone(), &resource)
            .patch(
                &name,
                &PatchParams::apply("klutch-journey").force(),
                &Patch::Apply(&obj),
            )
            .await
            .map_err(api(format!("apply {kind} {name} ({path})")))?;
        if kind == "CompositeResourceDefinition" {
            let names = &doc["spec"]["claimNames"];
            claims.push(format!(
                "{}.{}",
                names["plural"].as_str().unwrap_or_default(),
                doc["spec"]["group"].as_str().unwrap_or_default()
            ));
        }
    }
    let crds: Api<CustomResourceDefinition> = Api::all(cp.clone());
    for name in claims {
        klutch_sdk::testenv::eventually(
            &format!("Crossplane to offer claim CRD {name}"),
            timeout,
            || async {
                let crd = crds.get_opt(&name).await.ok()??;
                let established = crd
                    .status?
                    .conditions?
                    .into_iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                established.then_some(())
            },
        )
        .await?;
    }
    Ok(())
}

/// The Secret every ProviderConfig reads (`crossplane-system/fake-credentials`), with the fake
/// brokers' basic-auth user and password.
pub async fn credentials_secret(cp: &kube::Client) -> Result<()> {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "fake-credentials", "namespace": SYSTEM_NAMESPACE },
        "stringData": { "username": FAKE_USER, "password": FAKE_PASSWORD },
    }))
    .map_err(part("build the credentials Secret"))?;
    Api::<Secret>::namespaced(cp.clone(), SYSTEM_NAMESPACE)
        .patch(
            "fake-credentials",
            &PatchParams::apply("klutch-journey").force(),
            &Patch::Apply(&secret),
        )
        .await
        .map_err(api("apply the credentials Secret"))?;
    Ok(())
}

/// A cluster-scoped `ProviderConfig` `name` for the broker or Backup Manager at `url`, reading
/// [`credentials_secret`].
pub async fn provider_config(
    cp: &kube::Client,
    name: &str,
    url: &str,
    service_type: ServiceType,
) -> Result<()> {
    let selector = |key: &str| CredentialSelectors {
        secret_ref: Some(SecretKeySelector {
            name: "fake-credentials".into(),
            namespace: SYSTEM_NAMESPACE.into(),
            key: key.into(),
        }),
        ..CredentialSelectors::default()
    };
    let pc = ProviderConfig::new(
        name,
        ProviderConfigSpec {
            url: url.to_owned(),
            service_type,
            health_check_endpoint: None,
            provider_credentials: ProviderCredentials {
                source: CredentialsSource::Secret,
                username: selector("username"),
                password: selector("password"),
            },
            tls: None,
        },
    );
    let mut body = serde_json::to_value(&pc).map_err(part("serialise a ProviderConfig"))?;
    body["apiVersion"] = json!("dataservices.anynines.com/v1");
    body["kind"] = json!("ProviderConfig");
    Api::<ProviderConfig>::all(cp.clone())
        .patch(
            name,
            &PatchParams::apply("klutch-journey").force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(api(format!("apply ProviderConfig {name}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claim_kind_of_the_package_is_known() {
        let resources = claim_resources();
        assert_eq!(resources.len(), 11);
        let pg = claim_resource("PostgresqlInstance").unwrap();
        assert_eq!(pg.plural, "postgresqlinstances");
        assert_eq!(pg.api_version, "anynines.com/v1");
        assert_eq!(
            claim_resource("servicebindings").unwrap().kind,
            "ServiceBinding"
        );
        assert!(claim_resource("Widget").is_none());
        assert_eq!(all_claim_plurals().len(), 11);
    }

    #[test]
    fn catalogues_offer_every_allowed_plan_but_the_withheld_ones() {
        let withheld = vec!["postgresql-single-nano".to_owned()];
        let catalog = catalog(ServiceInstanceType::Postgresql, &withheld).unwrap();
        let service = catalog
            .services
            .iter()
            .find(|s| s.name == "a9s-postgresql17")
            .expect("every service the claims allow");
        assert!(
            service
                .plans
                .iter()
                .any(|p| p.name == "postgresql-single-small")
        );
        assert!(
            !service
                .plans
                .iter()
                .any(|p| p.name == "postgresql-single-nano")
        );
        for &kind in ServiceInstanceType::ALL {
            let (services, plans) = services_and_plans(kind);
            assert!(!services.is_empty() && !plans.is_empty(), "{kind}");
            assert!(catalog_ok(kind), "{kind}");
        }
    }

    fn catalog_ok(kind: ServiceInstanceType) -> bool {
        catalog(kind, &[]).is_ok_and(|c| !c.services.is_empty())
    }
}

//! Real local Kubernetes clusters for tests, like controller-runtime's envtest, native to Rust.
//!
//! A [`TestEnv`] runs one etcd and, per cluster, a kube-apiserver (on its own etcd prefix, port,
//! certificates and credentials) and a kube-controller-manager, so that namespace deletion,
//! garbage collection and service-account tokens work as in a real cluster. Optionally it runs
//! [Dex](https://dexidp.io) as a real OpenID Connect provider, and [`Crossplane`] core
//! with function-patch-and-transform on a cluster ([`TestEnvBuilder::crossplane`]). Everything
//! listens on 127.0.0.1 only (Crossplane core's metrics and health ports excepted: core has no
//! flag for their address).
//!
//! The binaries come from `testbins/build.sh`, which builds them from pinned Go modules (see
//! `docs/testenv.md`); [`Binaries::find`] explains where they are looked for.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//! use klutch_sdk::testenv::TestEnv;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let env = TestEnv::builder().cluster("control-plane").cluster("app").start().await?;
//! let app = env["app"].client().await?;
//! let cms: Api<ConfigMap> = Api::namespaced(app, "default");
//! let mut cm = ConfigMap::default();
//! cm.metadata.name = Some("hello".into());
//! cms.create(&PostParams::default(), &cm).await?;
//! // `control-plane` does not see it: the clusters are isolated.
//! drop(env); // stops every process and removes the run directory
//! # Ok(()) }
//! ```
//!
//! # Lifecycle
//!
//! Dropping a `TestEnv` stops its processes and removes its directory, also while a test panics;
//! in that case the last lines of every component's log are printed first, and cargo's test
//! output shows them. Set `KLUTCH_TESTENV_KEEP=1` to keep the directory (certificates,
//! kubeconfigs, logs) for a look afterwards. Each process runs under a guard that stops it when
//! its owner disappears in any way, so even a `static` environment or a test binary killed with
//! SIGKILL leaves no process and no directory behind.
//!
//! Environments are independent: tests that each start one may run in parallel. Starting one
//! takes a few seconds, so a test binary can share one through [`TestEnv::shared`] and give each
//! test its own namespace; tests that stop or restart clusters should start their own.

mod binaries;
pub mod browser;
mod cluster;
mod crossplane;
mod dex;
mod error;
pub mod fixtures;
mod pki;
pub mod postgres;
mod process;
mod registry;

use std::collections::HashSet;
use std::future::Future;
use std::net::TcpListener;
use std::ops::Index;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng as _;
use tokio::sync::OnceCell;

pub use binaries::{Binaries, TESTBIN_DIR_ENV};
pub use cluster::{Identity, TestCluster};
pub use crossplane::{CROSSPLANE_NAMESPACE, Crossplane, FUNCTION_IMAGE, FUNCTION_NAME};
pub use dex::{DEFAULT_BACKEND_REDIRECT_URIS, Dex, DexClient, DexConfig, DexTokens, DexUser};
pub use error::{Error, Result};
pub use registry::Registry;

use cluster::ClusterOptions;
use process::{Janitor, Process, log_tail};

/// Set to `1` to keep an environment's directory after it is dropped.
pub const KEEP_ENV: &str = "KLUTCH_TESTENV_KEEP";

/// The clusters [`TestEnv::shared`] starts.
pub const SHARED_CLUSTERS: [&str; 2] = ["control-plane", "app"];

/// A running set of local clusters (and optionally Dex). See the [module documentation](self).
pub struct TestEnv {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    keep: bool,
    etcd: Mutex<Option<Process>>,
    etcd_url: String,
    etcd_log: PathBuf,
    /// How etcd was started (program, arguments), to start it again on the same data and ports.
    etcd_command: (PathBuf, Vec<String>),
    etcd_timeout: Duration,
    clusters: Vec<TestCluster>,
    dex: Option<Dex>,
    crossplane: Vec<Crossplane>,
    janitor: Option<Janitor>,
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("dir", &self.path)
            .field("etcd", &self.etcd_url)
            .field("clusters", &self.clusters)
            .field("dex", &self.dex)
            .finish_non_exhaustive()
    }
}

/// Configures and starts a [`TestEnv`].
#[derive(Clone, Debug)]
pub struct TestEnvBuilder {
    clusters: Vec<String>,
    controller_manager: bool,
    wait_for_controllers: bool,
    dex: Option<DexConfig>,
    crossplane: Vec<String>,
    binaries: Option<Binaries>,
    start_timeout: Duration,
    compaction_interval: Option<Duration>,
    extra_apiserver_args: Vec<String>,
    extra_crossplane_args: Vec<String>,
}

impl Default for TestEnvBuilder {
    fn default() -> Self {
        TestEnvBuilder {
            clusters: Vec::new(),
            controller_manager: true,
            wait_for_controllers: true,
            dex: None,
            crossplane: Vec::new(),
            binaries: None,
            start_timeout: Duration::from_secs(90),
            compaction_interval: None,
            extra_apiserver_args: Vec::new(),
            extra_crossplane_args: Vec::new(),
        }
    }
}

impl TestEnvBuilder {
    /// Adds a cluster. Names are DNS labels (`[a-z0-9-]`, at most 40 characters) and unique.
    /// Without any, one cluster named `test` is started.
    pub fn cluster(mut self, name: &str) -> Self {
        self.clusters.push(name.to_owned());
        self
    }

    /// Runs a kube-controller-manager per cluster (default: yes). Without it namespaces stay
    /// `Terminating`, owner references are not garbage-collected and no default ServiceAccounts
    /// or service-account token Secrets are created.
    pub fn controller_manager(mut self, enabled: bool) -> Self {
        self.controller_manager = enabled;
        self
    }

    /// Waits at start until each controller manager has created the `default` ServiceAccount
    /// (default: yes), so tests can rely on the controllers at once.
    pub fn wait_for_controllers(mut self, enabled: bool) -> Self {
        self.wait_for_controllers = enabled;
        self
    }

    /// Starts Dex with this configuration.
    pub fn dex(mut self, config: DexConfig) -> Self {
        self.dex = Some(config);
        self
    }

    /// Runs Crossplane core and function-patch-and-transform against cluster `name` (one of the
    /// clusters added with [`cluster`](Self::cluster)): core CRDs, namespace
    /// `crossplane-system`, the function registered over mTLS, core ready. See [`Crossplane`];
    /// needs `testbins/build.sh crossplane crossplane-core crossplane-fpt`.
    pub fn crossplane(mut self, name: &str) -> Self {
        self.crossplane.push(name.to_owned());
        self
    }

    /// Lets Crossplane core trust this CA (PEM) when it pulls packages
    /// (`--ca-bundle-path`), e.g. [`Registry::ca_file`] of a local registry: with it a
    /// `Provider` or `Configuration` whose `spec.package` names an image there is installed by
    /// core's package manager. Shorthand for
    /// [`crossplane_core_arg`](Self::crossplane_core_arg).
    ///
    /// ```no_run
    /// # async fn demo() -> klutch_sdk::testenv::Result<()> {
    /// use klutch_sdk::testenv::{Registry, TestEnv};
    /// let registry = Registry::start().await?;
    /// let env = TestEnv::builder()
    ///     .cluster("control-plane")
    ///     .crossplane("control-plane")
    ///     .crossplane_ca_bundle(registry.ca_file())
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn crossplane_ca_bundle(self, pem_file: &Path) -> Self {
        self.crossplane_core_arg(format!("--ca-bundle-path={}", pem_file.display()))
    }

    /// Passes an extra flag to every Crossplane core started with
    /// [`crossplane`](Self::crossplane), after the harness's own, e.g.
    /// `--registry=127.0.0.1:5000` (the default registry of package references without one).
    pub fn crossplane_core_arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_crossplane_args.push(arg.into());
        self
    }

    /// Uses these binaries instead of [`Binaries::find`].
    pub fn binaries(mut self, binaries: Binaries) -> Self {
        self.binaries = Some(binaries);
        self
    }

    /// How long each component may take to become ready (default 90 s; a cold start on a loaded
    /// 2-core machine takes 5–15 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How often the apiservers compact etcd (default 5 min). A short interval makes watches
    /// that resume from an old resourceVersion get `410 Gone`, to test relisting.
    pub fn etcd_compaction_interval(mut self, interval: Duration) -> Self {
        self.compaction_interval = Some(interval);
        self
    }

    /// Passes an extra flag to every kube-apiserver, e.g. `--feature-gates=...`.
    pub fn apiserver_arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_apiserver_args.push(arg.into());
        self
    }

    /// Starts etcd, then every cluster (apiservers in parallel), then Dex, and waits until all
    /// are ready.
    pub async fn start(self) -> Result<TestEnv> {
        crate::tls::install_crypto_provider();
        let mut names = self.clusters.clone();
        if names.is_empty() {
            names.push("test".into());
        }
        validate_names(&names)?;
        let binaries = match self.binaries.clone() {
            Some(b) => b,
            None => Binaries::find()?,
        };
        // Fail fast on missing binaries, before anything is started.
        binaries.etcd()?;
        binaries.kube_apiserver()?;
        if self.controller_manager {
            binaries.kube_controller_manager()?;
        }
        if self.dex.is_some() {
            binaries.dex()?;
        }
        for name in &self.crossplane {
            if !names.contains(name) {
                return Err(Error::Config(format!(
                    "crossplane({name:?}): there is no cluster {name:?} (clusters: {names:?})"
                )));
            }
            binaries.crossplane_core()?;
            binaries.function_patch_and_transform()?;
            binaries.crossplane_crds()?;
        }

        let dir = tempfile::Builder::new()
            .prefix("klutch-testenv-")
            .tempdir()
            .map_err(|source| Error::Write {
                path: std::env::temp_dir(),
                source,
            })?;
        let path = dir.path().to_owned();
        let keep = std::env::var(KEEP_ENV).is_ok_and(|v| v == "1" || v == "true");
        let janitor = if keep {
            None
        } else {
            Some(Janitor::spawn(&path)?)
        };
        let mut env = TestEnv {
            dir: Some(dir),
            path: path.clone(),
            keep,
            etcd: Mutex::new(None),
            etcd_url: String::new(),
            etcd_log: path.join("etcd.log"),
            etcd_command: (PathBuf::new(), Vec::new()),
            etcd_timeout: self.start_timeout,
            clusters: Vec::new(),
            dex: None,
            crossplane: Vec::new(),
            janitor,
        };

        let (etcd, etcd_url, etcd_command) =
            start_etcd(&binaries, &path, self.start_timeout).await?;
        *env.etcd.lock().expect("etcd lock") = Some(etcd);
        env.etcd_url = etcd_url.clone();
        env.etcd_command = etcd_command;

        let options = ClusterOptions {
            controller_manager: self.controller_manager,
            wait_for_controllers: self.wait_for_controllers,
            start_timeout: self.start_timeout,
            etcd_url,
            compaction_interval: self.compaction_interval,
            extra_apiserver_args: self.extra_apiserver_args.clone(),
        };
        let mut clusters = Vec::new();
        for name in &names {
            clusters.push(TestCluster::prepare(
                name,
                &path,
                &binaries,
                options.clone(),
            )?);
        }
        let launched =
            futures::future::join_all(clusters.iter_mut().map(TestCluster::launch)).await;
        env.clusters = clusters;
        for result in launched {
            result?;
        }
        if let Some(config) = self.dex {
            env.dex = Some(Dex::start(config, &path, &binaries, self.start_timeout).await?);
        }
        for name in &self.crossplane {
            let cluster = env.cluster(name).expect("checked above");
            let crossplane = Crossplane::start(
                cluster,
                &binaries,
                &path,
                self.start_timeout,
                &self.extra_crossplane_args,
            )
            .await?;
            env.crossplane.push(crossplane);
        }
        tracing::info!(dir = %path.display(), clusters = ?names, "test environment ready");
        Ok(env)
    }
}

fn validate_names(names: &[String]) -> Result<()> {
    let mut seen = HashSet::new();
    for name in names {
        let valid = !name.is_empty()
            && name.len() <= 40
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            return Err(Error::Config(format!(
                "cluster name {name:?} is not a DNS label of at most 40 characters ([a-z0-9-])"
            )));
        }
        if !seen.insert(name.as_str()) {
            return Err(Error::Config(format!(
                "cluster name {name:?} is used twice"
            )));
        }
    }
    Ok(())
}

impl TestEnv {
    /// A builder; call [`TestEnvBuilder::start`] on it.
    pub fn builder() -> TestEnvBuilder {
        TestEnvBuilder::default()
    }

    /// One environment per process with the clusters of [`SHARED_CLUSTERS`] and controller
    /// managers, started by the first caller and shared by every later one (also across the
    /// Tokio runtimes of different `#[tokio::test]`s). It is never dropped; its processes stop and
    /// its directory is removed when the process exits. Give each test its own namespace, and
    /// do not stop or restart its clusters.
    pub async fn shared() -> Result<&'static TestEnv> {
        static SHARED: OnceCell<TestEnv> = OnceCell::const_new();
        SHARED
            .get_or_try_init(|| async {
                let mut builder = TestEnv::builder();
                for name in SHARED_CLUSTERS {
                    builder = builder.cluster(name);
                }
                builder.start().await
            })
            .await
    }

    /// The cluster called `name`, if there is one. `env["name"]` panics instead.
    pub fn cluster(&self, name: &str) -> Option<&TestCluster> {
        self.clusters.iter().find(|c| c.name() == name)
    }

    /// All clusters, in the order they were added.
    pub fn clusters(&self) -> &[TestCluster] {
        &self.clusters
    }

    /// Dex, when the environment was built with [`TestEnvBuilder::dex`].
    pub fn dex(&self) -> Option<&Dex> {
        self.dex.as_ref()
    }

    /// Crossplane on cluster `name`, when the environment was built with
    /// [`TestEnvBuilder::crossplane`] for it.
    pub fn crossplane(&self, name: &str) -> Option<&Crossplane> {
        self.crossplane.iter().find(|c| c.cluster() == name)
    }

    /// The run directory: one subdirectory per cluster, `etcd/`, `dex/` and the logs.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// etcd's client URL.
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// etcd's log file.
    pub fn etcd_log(&self) -> &Path {
        &self.etcd_log
    }

    /// Process group ids of every running component (etcd, apiservers, controller managers, Dex).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .etcd
            .lock()
            .expect("etcd lock")
            .as_mut()
            .and_then(|p| p.exited().is_none().then(|| p.pgid()))
            .into_iter()
            .collect();
        for cluster in &self.clusters {
            pids.extend(cluster.pids());
        }
        pids.extend(self.dex.as_ref().and_then(Dex::pid));
        for crossplane in &self.crossplane {
            pids.extend(crossplane.pids());
        }
        pids
    }

    /// Kills etcd with SIGKILL, as a crash would: every apiserver of the environment loses its
    /// storage until [`start_etcd`](Self::start_etcd). With
    /// [`TestCluster::kill_apiserver`] this stages the hard failure of a whole control plane.
    pub fn kill_etcd(&self) {
        if let Some(mut process) = self.etcd.lock().expect("etcd lock").take() {
            process.kill();
        }
    }

    /// Starts etcd again after [`kill_etcd`](Self::kill_etcd), on the same data directory and
    /// ports, and waits until it is healthy. Does nothing while etcd runs.
    pub async fn start_etcd(&self) -> Result<()> {
        let running = self
            .etcd
            .lock()
            .expect("etcd lock")
            .as_mut()
            .is_some_and(|p| p.exited().is_none());
        if running {
            return Ok(());
        }
        let (program, args) = &self.etcd_command;
        let mut process = Process::spawn("etcd", program, args, &self.etcd_log, &self.path)?;
        wait_etcd(&mut process, &self.etcd_url, self.etcd_timeout).await?;
        *self.etcd.lock().expect("etcd lock") = Some(process);
        Ok(())
    }

    /// Keeps the run directory when the environment is dropped (like `KLUTCH_TESTENV_KEEP=1`).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    fn report_logs(&self) -> String {
        let mut out = format!(
            "klutch testenv: component logs from {}\n",
            self.path.display()
        );
        for cluster in &self.clusters {
            out.push_str(&cluster.log_tails(20));
        }
        for crossplane in &self.crossplane {
            out.push_str(&crossplane.log_tails(20));
        }
        out.push_str(&format!(
            "--- {} (last 20 lines)\n{}\n",
            self.etcd_log.display(),
            log_tail(&self.etcd_log, 20)
        ));
        if let Some(dex) = &self.dex {
            out.push_str(&format!(
                "--- {} (last 20 lines)\n{}\n",
                dex.log().display(),
                log_tail(dex.log(), 20)
            ));
        }
        out
    }
}

impl Index<&str> for TestEnv {
    type Output = TestCluster;

    fn index(&self, name: &str) -> &TestCluster {
        self.cluster(name).unwrap_or_else(|| {
            let names: Vec<&str> = self.clusters.iter().map(TestCluster::name).collect();
            panic!("no cluster {name:?} in this test environment (it has {names:?})")
        })
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.report_logs());
        }
        // Ask everything to stop at once, then wait: shutdowns overlap. Crossplane first, so it
        // does not log a storm of connection errors while the apiservers go away.
        for crossplane in &self.crossplane {
            crossplane.terminate_all();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for crossplane in &self.crossplane {
            crossplane.wait_all(deadline);
        }
        for cluster in &self.clusters {
            cluster.terminate_all();
        }
        if let Some(dex) = &self.dex {
            dex.terminate();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for cluster in &self.clusters {
            cluster.wait_all(deadline);
        }
        if let Some(dex) = &self.dex {
            dex.wait(deadline);
        }
        if let Some(mut etcd) = self.etcd.lock().expect("etcd lock").take() {
            etcd.terminate();
            etcd.wait_or_kill(Instant::now() + Duration::from_secs(5));
        }
        let dir = self.dir.take();
        if self.keep {
            if let Some(dir) = dir {
                let path = dir.keep();
                eprintln!("klutch testenv: kept {}", path.display());
            }
        } else if let Some(dir) = dir
            && let Err(e) = dir.close()
        {
            eprintln!(
                "klutch testenv: could not remove {}: {e}",
                self.path.display()
            );
        }
        if let Some(janitor) = self.janitor.take() {
            janitor.finish(self.keep);
        }
    }
}

/// Starts etcd on free loopback ports and waits for `/health`; returns it, its client URL and
/// the command that started it.
async fn start_etcd(
    binaries: &Binaries,
    run_dir: &Path,
    timeout: Duration,
) -> Result<(Process, String, (PathBuf, Vec<String>))> {
    let program = binaries.etcd()?;
    let log = run_dir.join("etcd.log");
    let mut attempt = 0;
    loop {
        attempt += 1;
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let url = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let args = vec![
            "--name=klutch-testenv".to_owned(),
            format!("--data-dir={}", run_dir.join("etcd").display()),
            format!("--listen-client-urls={url}"),
            format!("--advertise-client-urls={url}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=klutch-testenv={peer}"),
            "--unsafe-no-fsync".to_owned(),
            "--log-level=warn".to_owned(),
        ];
        let mut process = Process::spawn("etcd", &program, &args, &log, run_dir)?;
        match wait_etcd(&mut process, &url, timeout).await {
            Err(Error::Exited { tail, .. })
                if attempt < 4 && tail.contains("address already in use") =>
            {
                let _ = std::fs::remove_dir_all(run_dir.join("etcd"));
            }
            other => {
                other?;
                return Ok((process, url, (program, args)));
            }
        }
    }
}

/// Waits until the etcd at `url` reports itself healthy.
async fn wait_etcd(process: &mut Process, url: &str, timeout: Duration) -> Result<()> {
    let http = http_client(None)?;
    let health = format!("{url}/health");
    wait_ready(process, timeout, || {
        let req = http.get(&health);
        async move {
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let body = resp.text().await.map_err(|e| e.to_string())?;
            if body.contains("\"health\":\"true\"") {
                Ok(())
            } else {
                Err(body)
            }
        }
    })
    .await
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most `timeout`: the wait for
/// "eventually consistent" state that every test against real clusters needs.
///
/// ```
/// # async fn demo() -> klutch_sdk::testenv::Result<()> {
/// use std::time::Duration;
/// let mut polls = 0;
/// let value = klutch_sdk::testenv::eventually("the third poll", Duration::from_secs(5), || {
///     polls += 1;
///     let done = polls == 3;
///     async move { done.then_some(42) }
/// })
/// .await?;
/// assert_eq!(value, 42);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_owned(),
                waited: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Installs (server-side applies, field manager `klutch-testenv`) a CRD and waits up to 60 s
/// until it is Established, as envtest's CRD installation does. Applying again is a no-op, so
/// tests that share an environment can each install what they need.
///
/// ```no_run
/// # async fn demo(env: &klutch_sdk::testenv::TestEnv) -> klutch_sdk::testenv::Result<()> {
/// let client = env["control-plane"].client().await?;
/// for crd in klutch_sdk::api::crds() {
///     klutch_sdk::testenv::install_crd(&client, &crd).await?;
/// }
/// # Ok(()) }
/// ```
pub async fn install_crd(
    client: &kube::Client,
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Result<
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, Patch, PatchParams};
    use kube::runtime::wait::{await_condition, conditions};

    let name = crd.metadata.name.clone().unwrap_or_default();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch(
        &name,
        &PatchParams::apply("klutch-testenv").force(),
        &Patch::Apply(crd),
    )
    .await
    .map_err(|source| Error::Api {
        what: format!("apply CRD {name}"),
        source,
    })?;
    let waited = Duration::from_secs(60);
    match tokio::time::timeout(
        waited,
        await_condition(api, &name, conditions::is_crd_established()),
    )
    .await
    {
        Ok(Ok(Some(established))) => Ok(established),
        Ok(Ok(None)) => Err(Error::Config(format!(
            "CRD {name} was deleted while waiting for it"
        ))),
        Ok(Err(e)) => Err(Error::Config(format!("watch CRD {name}: {e}"))),
        Err(_) => Err(Error::Timeout {
            what: format!("CRD {name} to become Established"),
            waited,
        }),
    }
}

/// A free TCP port on 127.0.0.1. Ports handed out in this process are not handed out again, so
/// parallel environments do not collide with each other; a collision with another process is
/// detected at start-up and retried on a new port.
pub fn free_port() -> Result<u16> {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(Error::FreePort)?
            .port();
        if GIVEN
            .lock()
            .expect("port registry")
            .get_or_insert_with(HashSet::new)
            .insert(port)
        {
            return Ok(port);
        }
    }
    Err(Error::FreePort(std::io::Error::other(
        "no unused port after 100 tries",
    )))
}

/// 16 random alphanumeric characters.
pub(crate) fn random_token() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect()
}

pub(crate) fn write_file(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes a file only its owner may read (keys, tokens, kubeconfigs).
pub(crate) fn write_secret_file(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })
}

/// An HTTP client for readiness probes, trusting only `ca_pem` when given.
pub(crate) fn http_client(ca_pem: Option<&str>) -> Result<reqwest::Client> {
    crate::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2));
    if let Some(pem) = ca_pem {
        let cert =
            reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|source| Error::Http {
                what: "load the cluster CA".into(),
                source,
            })?;
        builder = builder.tls_certs_only([cert]);
    }
    builder.build().map_err(|source| Error::Http {
        what: "build the readiness HTTP client".into(),
        source,
    })
}

/// `Ok` when the request answers with a 2xx status.
pub(crate) async fn expect_ok(req: reqwest::RequestBuilder) -> std::result::Result<(), String> {
    let resp = req.send().await.map_err(|e| format!("{e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Err(format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        ))
    }
}

/// Polls `probe` every 100 ms until it succeeds, the process exits, or `timeout` passes.
pub(crate) async fn wait_ready<F, Fut>(
    process: &mut Process,
    timeout: Duration,
    probe: F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = std::result::Result<(), String>>,
{
    let start = Instant::now();
    loop {
        process.check_running()?;
        let last_error = match probe().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if start.elapsed() > timeout {
            return Err(Error::NotReady {
                component: process.component().to_owned(),
                waited: start.elapsed(),
                last_error,
                log: process.log().to_owned(),
                tail: log_tail(process.log(), 25),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_must_be_unique_dns_labels() {
        assert!(validate_names(&["control-plane".into(), "app-2".into()]).is_ok());
        for bad in [
            "",
            "Upper",
            "under_score",
            "-lead",
            "trail-",
            &"x".repeat(41),
        ] {
            let err = validate_names(&[bad.to_string()]).expect_err(bad);
            assert!(err.to_string().contains("is not a DNS label"), "{err}");
        }
        let err = validate_names(&["a".into(), "a".into()]).unwrap_err();
        assert!(err.to_string().contains("used twice"));
    }

    #[test]
    fn free_ports_are_not_handed_out_twice() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
    }

    #[test]
    fn log_tail_returns_the_last_lines_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(
            &log,
            (1..=100).map(|i| format!("line {i}\n")).collect::<String>(),
        )
        .unwrap();
        assert_eq!(log_tail(&log, 2), "line 99\nline 100");
        assert!(log_tail(&dir.path().join("missing.log"), 2).starts_with("(no log at"));
    }

    #[test]
    fn secret_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_secret_file(&path, "secret").unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let err = write_file(&dir.path().join("no/such/dir/file"), "x").unwrap_err();
        assert!(err.to_string().starts_with("write "), "{err}");
    }
}

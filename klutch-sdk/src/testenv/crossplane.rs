//! Crossplane on a test cluster: Crossplane core (v1.20, `crossplane-core core start`) and
//! function-patch-and-transform as local processes, as `spec/testenv.md` §7.3 verified.
//!
//! See [`Crossplane`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::json;

use super::pki::Ca;
use super::process::{Process, log_tail};
use super::{Binaries, Error, Result, TestCluster, free_port, write_file, write_secret_file};

/// The name the configuration package's compositions use in `functionRef.name`.
pub const FUNCTION_NAME: &str = "function-patch-and-transform";
/// The namespace Crossplane core works in.
pub const CROSSPLANE_NAMESPACE: &str = "crossplane-system";
/// The package reference the paused `Function` and `FunctionRevision` carry. Nothing pulls it;
/// it names the version `testbins/build.sh crossplane-fpt` builds.
pub const FUNCTION_IMAGE: &str =
    "xpkg.upbound.io/crossplane-contrib/function-patch-and-transform:v0.10.9";
/// The annotation that makes Crossplane's package reconcilers leave an object alone.
const PAUSED: &str = "crossplane.io/paused";
/// The field manager of everything the harness applies.
const MANAGER: &str = "klutch-testenv";

/// Crossplane running on one cluster of a [`TestEnv`](super::TestEnv).
///
/// There is no kubelet or container runtime in a test environment, so the harness sets core up
/// without its package manager:
///
/// - Crossplane's core CRDs (`$KLUTCH_TESTBIN_DIR/crossplane-crds/`) are applied server-side and
///   namespace `crossplane-system` is created (what `crossplane core init` would do);
/// - one CA (rcgen) signs a client certificate for core and a server certificate for the
///   function: core dials functions over mTLS only;
/// - the function runs on a free loopback port, and a `Function` plus an `Active`
///   `FunctionRevision`, both annotated `crossplane.io/paused`, register it without an image
///   pull; the revision's `status.endpoint` points at the port;
/// - core runs with webhooks off, `--package-runtime=External` and the admin kubeconfig.
///
/// Managed-resource controllers (providers) are not part of this: a test runs its provider's
/// engine against the cluster itself.
///
/// Core's package manager does work against a local OCI registry ([`Registry`](super::Registry)):
/// start with [`TestEnvBuilder::crossplane_ca_bundle`](super::TestEnvBuilder::crossplane_ca_bundle)
/// and a `Provider` or `Configuration` naming a package there becomes Installed and Healthy, its
/// CRDs, XRDs and Compositions applied by core. With `--package-runtime=External` nothing of the
/// provider's runtime image runs: the test still runs the provider's engine itself.
///
/// Start it with
/// [`TestEnvBuilder::crossplane`](super::TestEnvBuilder::crossplane) and reach it with
/// [`TestEnv::crossplane`](super::TestEnv::crossplane).
///
/// ```no_run
/// # async fn demo() -> klutch_sdk::testenv::Result<()> {
/// use klutch_sdk::testenv::TestEnv;
/// let env = TestEnv::builder().cluster("control-plane").crossplane("control-plane").start().await?;
/// let crossplane = env.crossplane("control-plane").expect("started with it");
/// // ... apply XRDs and Compositions, run the provider, create claims ...
/// crossplane.restart_core().await?; // a crash and restart mid-test
/// # Ok(()) }
/// ```
pub struct Crossplane {
    cluster: String,
    dir: PathBuf,
    run_dir: PathBuf,
    core_program: PathBuf,
    core_args: Vec<String>,
    kubeconfig: PathBuf,
    function_endpoint: String,
    start_timeout: Duration,
    core: Mutex<Option<Process>>,
    function: Mutex<Option<Process>>,
}

impl std::fmt::Debug for Crossplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crossplane")
            .field("cluster", &self.cluster)
            .field("dir", &self.dir)
            .field("function_endpoint", &self.function_endpoint)
            .finish_non_exhaustive()
    }
}

impl Crossplane {
    /// Installs the CRDs, registers and starts the function, starts core and waits until core's
    /// readiness probe answers.
    pub(crate) async fn start(
        cluster: &TestCluster,
        binaries: &Binaries,
        run_dir: &Path,
        start_timeout: Duration,
        extra_core_args: &[String],
    ) -> Result<Crossplane> {
        let started = Instant::now();
        let core_program = binaries.crossplane_core()?;
        let function_program = binaries.function_patch_and_transform()?;
        let crds_dir = binaries.crossplane_crds()?;
        let dir = cluster.dir().join("crossplane");
        let core_certs = dir.join("core-certs");
        let function_certs = dir.join("function-certs");
        let cache = dir.join("xpkg-cache");
        for d in [&dir, &core_certs, &function_certs, &cache] {
            std::fs::create_dir_all(d).map_err(|source| Error::Write {
                path: d.clone(),
                source,
            })?;
        }

        // One CA for both ends of the mTLS connection core makes to the function.
        let ca = Ca::new(&format!("klutch-testenv {} crossplane CA", cluster.name()))?;
        let client = ca.issue_client("crossplane", &[])?;
        let server = ca.issue_server(FUNCTION_NAME)?;
        for (certs, leaf) in [(&core_certs, &client), (&function_certs, &server)] {
            write_file(&certs.join("ca.crt"), ca.cert_pem())?;
            write_file(&certs.join("tls.crt"), &leaf.cert_pem)?;
            write_secret_file(&certs.join("tls.key"), &leaf.key_pem)?;
        }

        let kube = cluster.client().await?;
        install_core_crds(&kube, &crds_dir).await?;
        create_namespace(&kube, CROSSPLANE_NAMESPACE).await?;

        // The function first: a claim reconciled before it listens waits minutes on a deadline.
        let port = free_port()?;
        let function_endpoint = format!("127.0.0.1:{port}");
        let mut function = Process::spawn(
            format!("{FUNCTION_NAME} (cluster {})", cluster.name()),
            &function_program,
            &[
                format!("--tls-certs-dir={}", function_certs.display()),
                format!("--address={function_endpoint}"),
                "--debug".into(),
            ],
            &dir.join("function.log"),
            run_dir,
        )?;
        let endpoint = function_endpoint.clone();
        let progress = Progress::new(&format!("{FUNCTION_NAME} at {endpoint}"));
        super::wait_ready(&mut function, start_timeout, || {
            let endpoint = endpoint.clone();
            let progress = &progress;
            async move {
                let result = tokio::net::TcpStream::connect(&endpoint)
                    .await
                    .map(drop)
                    .map_err(|e| format!("connect {endpoint}: {e}"));
                if let Err(e) = &result {
                    progress.tick(e);
                }
                result
            }
        })
        .await?;
        register_function(&kube, &function_endpoint).await?;

        let mut core_args = vec![
            "core".into(),
            "start".into(),
            "--enable-webhooks=false".into(),
            "--package-runtime=External".into(),
            format!("--namespace={CROSSPLANE_NAMESPACE}"),
            format!("--xpkg-cache-dir={}", cache.display()),
            format!("--tls-client-certs-dir={}", core_certs.display()),
            format!("--metrics-port={}", free_port()?),
            format!("--health-probe-port={}", free_port()?),
            // Claims are checked again soon after a restart or a provider outage.
            "--poll-interval=10s".into(),
            "--debug".into(),
        ];
        core_args.extend(extra_core_args.iter().cloned());
        let crossplane = Crossplane {
            cluster: cluster.name().to_owned(),
            dir,
            run_dir: run_dir.to_owned(),
            core_program,
            core_args,
            kubeconfig: cluster.kubeconfig_path().to_owned(),
            function_endpoint,
            start_timeout,
            core: Mutex::new(None),
            function: Mutex::new(Some(function)),
        };
        crossplane.start_core().await?;
        tracing::info!(
            cluster = %crossplane.cluster,
            elapsed = ?started.elapsed(),
            "Crossplane core and {FUNCTION_NAME} ready"
        );
        Ok(crossplane)
    }

    fn health_port(&self) -> &str {
        self.core_args
            .iter()
            .find_map(|a| a.strip_prefix("--health-probe-port="))
            .unwrap_or_default()
    }

    /// Starts core if it is not running and waits until its readiness probe answers 200.
    pub async fn start_core(&self) -> Result<()> {
        if self.core_running() {
            return Ok(());
        }
        let log = self.core_log();
        let mut process = Process::spawn_with_env(
            format!("crossplane core (cluster {})", self.cluster),
            &self.core_program,
            &self.core_args,
            &log,
            &self.run_dir,
            &[("KUBECONFIG", self.kubeconfig.as_os_str())],
            // Keep the log of an earlier run: a restart appends to it.
            true,
        )?;
        let http = super::http_client(None)?;
        let url = format!("http://127.0.0.1:{}/readyz", self.health_port());
        let what = format!("crossplane core (cluster {}) readiness", self.cluster);
        let progress = Progress::new(&what);
        super::wait_ready(&mut process, self.start_timeout, || {
            let req = http.get(&url);
            let progress = &progress;
            async move {
                let result = super::expect_ok(req).await;
                if let Err(e) = &result {
                    progress.tick(e);
                }
                result
            }
        })
        .await?;
        *self.core.lock().expect("core lock") = Some(process);
        Ok(())
    }

    /// Stops core gracefully (SIGTERM, SIGKILL after 10 s). Claims and composites stay; nothing
    /// reconciles them until [`start_core`](Self::start_core).
    pub async fn stop_core(&self) {
        let taken = self.core.lock().expect("core lock").take();
        if let Some(mut process) = taken {
            process.stop(Duration::from_secs(10)).await;
        }
    }

    /// Kills core with SIGKILL, as a crash would.
    pub fn kill_core(&self) {
        if let Some(mut process) = self.core.lock().expect("core lock").take() {
            process.kill();
        }
    }

    /// [`stop_core`](Self::stop_core), then [`start_core`](Self::start_core).
    pub async fn restart_core(&self) -> Result<()> {
        self.stop_core().await;
        self.start_core().await
    }

    /// Creates the TLS Secrets core expects for a `Provider` named `provider` when its runtime
    /// is external: `<provider>-tls-server` and `<provider>-tls-client` in
    /// [`CROSSPLANE_NAMESPACE`], each with `tls.crt`, `tls.key` and `ca.crt` from a fresh CA.
    ///
    /// With `--package-runtime=Deployment` core's runtime hook creates them; with `External`
    /// nobody does, and the `ProviderRevision` stays unhealthy with "cannot establish control
    /// of object: cannot get webhook tls secret". Call it before or after applying the
    /// `Provider`; core retries.
    pub async fn provider_tls_secrets(&self, client: &kube::Client, provider: &str) -> Result<()> {
        let ca = Ca::new(&format!("klutch-testenv {provider} CA"))?;
        let server = ca.issue_server(provider)?;
        let client_leaf = ca.issue_client(provider, &[])?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), CROSSPLANE_NAMESPACE);
        for (suffix, leaf) in [("tls-server", &server), ("tls-client", &client_leaf)] {
            let name = format!("{provider}-{suffix}");
            let secret: Secret = serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": { "name": name, "namespace": CROSSPLANE_NAMESPACE },
                "type": "Opaque",
                "stringData": {
                    "tls.crt": leaf.cert_pem,
                    "tls.key": leaf.key_pem,
                    "ca.crt": ca.cert_pem(),
                },
            }))
            .map_err(|source| Error::Json {
                what: format!("Secret {name}"),
                source,
            })?;
            secrets
                .patch(
                    &name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&secret),
                )
                .await
                .map_err(|source| Error::Api {
                    what: format!("apply Secret {CROSSPLANE_NAMESPACE}/{name}"),
                    source,
                })?;
        }
        Ok(())
    }

    /// Whether core is running.
    pub fn core_running(&self) -> bool {
        self.core
            .lock()
            .expect("core lock")
            .as_mut()
            .is_some_and(|p| p.exited().is_none())
    }

    /// The cluster Crossplane runs on.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Crossplane's directory: certificates, package cache and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Core's log file (kept across restarts).
    pub fn core_log(&self) -> PathBuf {
        self.dir.join("core.log")
    }

    /// function-patch-and-transform's log file.
    pub fn function_log(&self) -> PathBuf {
        self.dir.join("function.log")
    }

    /// Where function-patch-and-transform listens (`127.0.0.1:<port>`, mTLS).
    pub fn function_endpoint(&self) -> &str {
        &self.function_endpoint
    }

    /// Process group ids of the running core and function.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for slot in [&self.core, &self.function] {
            if let Some(p) = slot.lock().expect("process lock").as_mut()
                && p.exited().is_none()
            {
                pids.push(p.pgid());
            }
        }
        pids
    }

    /// The last lines of core's and the function's logs, for failure reports.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for log in [self.core_log(), self.function_log()] {
            out.push_str(&format!(
                "--- {} (last {lines} lines)\n{}\n",
                log.display(),
                log_tail(&log, lines)
            ));
        }
        out
    }

    /// Sends SIGTERM to core and the function without waiting (teardown).
    pub(crate) fn terminate_all(&self) {
        for slot in [&self.core, &self.function] {
            if let Some(p) = slot.lock().expect("process lock").as_mut() {
                p.terminate();
            }
        }
    }

    /// Waits for core and the function to exit, killing what still runs at `deadline`.
    pub(crate) fn wait_all(&self, deadline: Instant) {
        for slot in [&self.core, &self.function] {
            if let Some(mut p) = slot.lock().expect("process lock").take() {
                p.wait_or_kill(deadline);
            }
        }
    }
}

/// Logs every 10 s while a wait goes on, with the last thing the probe saw.
struct Progress {
    what: String,
    started: Instant,
    last: Mutex<Instant>,
}

impl Progress {
    fn new(what: &str) -> Self {
        Progress {
            what: what.to_owned(),
            started: Instant::now(),
            last: Mutex::new(Instant::now()),
        }
    }

    fn tick(&self, last_error: &str) {
        let mut last = self.last.lock().expect("progress lock");
        if last.elapsed() >= Duration::from_secs(10) {
            *last = Instant::now();
            tracing::info!(
                waited = ?self.started.elapsed(),
                last_error,
                "still waiting for {}",
                self.what
            );
        }
    }
}

/// Applies every CRD in `dir` server-side and waits until all are Established.
async fn install_core_crds(client: &kube::Client, dir: &Path) -> Result<()> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Config(format!("read Crossplane's CRDs in {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::Config(format!(
            "no CRDs in {}: rebuild with `testbins/build.sh crossplane`",
            dir.display()
        )));
    }
    let mut crds = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("read {}: {e}", path.display())))?;
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text)
            .map_err(|e| Error::Config(format!("parse {}: {e}", path.display())))?;
        crds.push(crd);
    }
    let installed =
        futures::future::join_all(crds.iter().map(|crd| super::install_crd(client, crd))).await;
    for result in installed {
        result?;
    }
    Ok(())
}

async fn create_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name }
    }))
    .map_err(|source| Error::Json {
        what: format!("namespace {name}"),
        source,
    })?;
    Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::apply(MANAGER), &Patch::Apply(&ns))
        .await
        .map_err(|source| Error::Api {
            what: format!("create namespace {name}"),
            source,
        })?;
    Ok(())
}

fn pkg_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "pkg.crossplane.io".into(),
        version: "v1".into(),
        api_version: "pkg.crossplane.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The paused `Function` and `FunctionRevision` that point core at `endpoint` (§7.3).
async fn register_function(client: &kube::Client, endpoint: &str) -> Result<()> {
    let apply = |what: &str, value: serde_json::Value| -> Result<DynamicObject> {
        serde_json::from_value(value).map_err(|source| Error::Json {
            what: what.to_owned(),
            source,
        })
    };
    let api_err = |what: String| move |source| Error::Api { what, source };
    let functions: Api<DynamicObject> =
        Api::all_with(client.clone(), &pkg_resource("Function", "functions"));
    let function = apply(
        "the Function",
        json!({
            "apiVersion": "pkg.crossplane.io/v1",
            "kind": "Function",
            "metadata": { "name": FUNCTION_NAME, "annotations": { PAUSED: "true" } },
            "spec": { "package": FUNCTION_IMAGE },
        }),
    )?;
    functions
        .patch(
            FUNCTION_NAME,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&function),
        )
        .await
        .map_err(api_err(format!("apply Function {FUNCTION_NAME}")))?;

    let revisions: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &pkg_resource("FunctionRevision", "functionrevisions"),
    );
    let name = format!("{FUNCTION_NAME}-local");
    let revision = apply(
        "the FunctionRevision",
        json!({
            "apiVersion": "pkg.crossplane.io/v1",
            "kind": "FunctionRevision",
            "metadata": {
                "name": name,
                "labels": { "pkg.crossplane.io/package": FUNCTION_NAME },
                "annotations": { PAUSED: "true" },
            },
            "spec": { "desiredState": "Active", "image": FUNCTION_IMAGE, "revision": 1 },
        }),
    )?;
    revisions
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&revision),
        )
        .await
        .map_err(api_err(format!("apply FunctionRevision {name}")))?;
    revisions
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "endpoint": endpoint } })),
        )
        .await
        .map_err(api_err(format!(
            "set the endpoint of FunctionRevision {name}"
        )))?;
    Ok(())
}

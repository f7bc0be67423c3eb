//! One cluster: a kube-apiserver (and by default a kube-controller-manager) on its own etcd
//! prefix, with its own certificates, tokens and service-account keys.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};
use secrecy::{ExposeSecret, SecretString};

use super::pki::{self, Ca};
use super::process::{Process, log_tail};
use super::{Binaries, Error, Result, free_port, random_token, write_file, write_secret_file};

/// Options shared by all clusters of one environment.
#[derive(Clone, Debug)]
pub(crate) struct ClusterOptions {
    pub(crate) controller_manager: bool,
    pub(crate) wait_for_controllers: bool,
    pub(crate) start_timeout: Duration,
    pub(crate) etcd_url: String,
    pub(crate) compaction_interval: Option<Duration>,
    pub(crate) extra_apiserver_args: Vec<String>,
}

/// A running cluster of a [`TestEnv`](super::TestEnv): a real kube-apiserver on
/// `https://127.0.0.1:<port>`, isolated from the environment's other clusters by its own etcd
/// prefix, certificates and credentials.
///
/// Get an admin client with [`client`](Self::client), a kubeconfig file with
/// [`kubeconfig_path`](Self::kubeconfig_path), and a restricted identity for RBAC tests with
/// [`identity`](Self::identity). [`stop`](Self::stop), [`start`](Self::start),
/// [`restart`](Self::restart) and [`kill_apiserver`](Self::kill_apiserver) stage outages: the
/// cluster comes back on the same port with the same data.
pub struct TestCluster {
    name: String,
    dir: PathBuf,
    run_dir: PathBuf,
    url: String,
    serving_ca_pem: String,
    client_ca: Ca,
    admin_token: SecretString,
    kubeconfig_path: PathBuf,
    apiserver_args: Vec<String>,
    binaries: Binaries,
    options: ClusterOptions,
    apiserver: Mutex<Option<Process>>,
    controller_manager: Mutex<Option<Process>>,
}

impl fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCluster")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Who a client authenticates as.
#[derive(Clone)]
enum Credentials {
    Token(SecretString),
    ClientCertificate {
        cert_pem: String,
        key_pem: SecretString,
    },
}

/// A user of one [`TestCluster`], authenticated by a client certificate or a bearer token, with no
/// permissions beyond what RBAC grants it. Kubernetes takes the user name from the certificate's
/// common name and the groups from its organisations.
///
/// ```no_run
/// # async fn demo(cluster: &klutch_sdk::testenv::TestCluster) -> klutch_sdk::testenv::Result<()> {
/// let alice = cluster.identity("alice", &["team-a"])?;
/// let client = alice.client().await?; // 403 on everything until a RoleBinding allows it
/// # let _ = client; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Identity {
    user: String,
    cluster: String,
    server: String,
    ca_pem: String,
    credentials: Credentials,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("user", &self.user)
            .field("cluster", &self.cluster)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// A kubeconfig for this identity (one cluster, one user, one context named after the
    /// cluster), with the CA and credentials inline.
    pub fn kubeconfig(&self) -> Kubeconfig {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let auth = match &self.credentials {
            Credentials::Token(token) => AuthInfo {
                token: Some(token.clone()),
                ..AuthInfo::default()
            },
            Credentials::ClientCertificate { cert_pem, key_pem } => AuthInfo {
                client_certificate_data: Some(b64(cert_pem)),
                client_key_data: Some(b64(key_pem.expose_secret()).into()),
                ..AuthInfo::default()
            },
        };
        Kubeconfig {
            api_version: Some("v1".into()),
            kind: Some("Config".into()),
            clusters: vec![NamedCluster {
                name: self.cluster.clone(),
                cluster: Some(Cluster {
                    server: Some(self.server.clone()),
                    certificate_authority_data: Some(b64(&self.ca_pem)),
                    ..Cluster::default()
                }),
                ..NamedCluster::default()
            }],
            auth_infos: vec![NamedAuthInfo {
                name: self.user.clone(),
                auth_info: Some(auth),
                ..NamedAuthInfo::default()
            }],
            contexts: vec![NamedContext {
                name: self.cluster.clone(),
                context: Some(Context {
                    cluster: self.cluster.clone(),
                    user: Some(self.user.clone()),
                    ..Context::default()
                }),
                ..NamedContext::default()
            }],
            current_context: Some(self.cluster.clone()),
            ..Kubeconfig::default()
        }
    }

    /// The kubeconfig as YAML, readable by kubectl and every client library.
    pub fn kubeconfig_yaml(&self) -> Result<String> {
        serde_saphyr::to_string(&self.kubeconfig()).map_err(|e| Error::SerializeKubeconfig {
            context: self.cluster.clone(),
            message: e.to_string(),
        })
    }

    /// Writes the kubeconfig to `path` (mode 0600).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        write_secret_file(path, &self.kubeconfig_yaml()?)
    }

    /// A new `kube::Client` for this identity.
    ///
    /// Clients are bound to the Tokio runtime that builds them, so build one per test rather than
    /// sharing one between `#[tokio::test]`s.
    pub async fn client(&self) -> Result<kube::Client> {
        let config = self.config().await?;
        kube::Client::try_from(config).map_err(|source| Error::Client {
            context: self.context(),
            source,
        })
    }

    /// The `kube::Config` behind [`client`](Self::client), for clients with extra tower layers
    /// (e.g. request counters) built with `kube::client::ClientBuilder`.
    pub async fn config(&self) -> Result<kube::Config> {
        crate::tls::install_crypto_provider();
        kube::Config::from_custom_kubeconfig(self.kubeconfig(), &KubeConfigOptions::default())
            .await
            .map_err(|source| Error::Kubeconfig {
                context: self.context(),
                source,
            })
    }

    fn context(&self) -> String {
        format!("{}@{}", self.user, self.cluster)
    }
}

impl TestCluster {
    /// Prepares the cluster's directory, certificates, tokens and arguments; does not start it.
    pub(crate) fn prepare(
        name: &str,
        run_dir: &Path,
        binaries: &Binaries,
        options: ClusterOptions,
    ) -> Result<Self> {
        let dir = run_dir.join(name);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
        let serving_ca = Ca::new(&format!("klutch-testenv {name} serving CA"))?;
        let serving = serving_ca.issue_server(&format!("kube-apiserver {name}"))?;
        let client_ca = Ca::new(&format!("klutch-testenv {name} client CA"))?;
        let (sa_key, sa_pub) = pki::service_account_keys()?;
        let admin_token: SecretString = format!("admin-{name}-{}", random_token()).into();

        write_file(&dir.join("serving-ca.crt"), serving_ca.cert_pem())?;
        write_file(&dir.join("serving.crt"), &serving.cert_pem)?;
        write_secret_file(&dir.join("serving.key"), &serving.key_pem)?;
        write_file(&dir.join("client-ca.crt"), client_ca.cert_pem())?;
        write_secret_file(&dir.join("sa.key"), &sa_key)?;
        write_file(&dir.join("sa.pub"), &sa_pub)?;
        write_secret_file(
            &dir.join("tokens.csv"),
            &format!(
                "{},admin,uid-admin,\"system:masters\"\n",
                admin_token.expose_secret()
            ),
        )?;

        let mut cluster = TestCluster {
            name: name.to_owned(),
            kubeconfig_path: dir.join("admin.kubeconfig"),
            dir,
            run_dir: run_dir.to_owned(),
            url: String::new(),
            serving_ca_pem: serving_ca.cert_pem().to_owned(),
            client_ca,
            admin_token,
            apiserver_args: Vec::new(),
            binaries: binaries.clone(),
            options,
            apiserver: Mutex::new(None),
            controller_manager: Mutex::new(None),
        };
        cluster.assign_port()?;
        Ok(cluster)
    }

    /// Picks a free port and derives the URL, the apiserver's arguments and the admin kubeconfig.
    fn assign_port(&mut self) -> Result<()> {
        let port = free_port()?;
        self.url = format!("https://127.0.0.1:{port}");
        let d = |f: &str| self.dir.join(f).display().to_string();
        let mut args = vec![
            format!("--etcd-servers={}", self.options.etcd_url),
            format!("--etcd-prefix=/klutch-testenv/{}", self.name),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", d("certs")),
            format!("--tls-cert-file={}", d("serving.crt")),
            format!("--tls-private-key-file={}", d("serving.key")),
            format!("--client-ca-file={}", d("client-ca.crt")),
            format!("--token-auth-file={}", d("tokens.csv")),
            "--authorization-mode=RBAC".into(),
            format!("--service-account-issuer={}", self.url),
            format!("--service-account-key-file={}", d("sa.pub")),
            format!("--service-account-signing-key-file={}", d("sa.key")),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--endpoint-reconciler-type=none".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ];
        if !self.options.controller_manager {
            // Nothing would create the default ServiceAccounts that this plugin insists on.
            args.push("--disable-admission-plugins=ServiceAccount".into());
        }
        if let Some(interval) = self.options.compaction_interval {
            args.push(format!(
                "--etcd-compaction-interval={}s",
                interval.as_secs()
            ));
        }
        args.extend(self.options.extra_apiserver_args.iter().cloned());
        self.apiserver_args = args;
        self.admin().write_kubeconfig(&self.kubeconfig_path)
    }

    /// Starts the apiserver (retrying on a port taken in the meantime), waits until it is ready,
    /// then starts the controller manager.
    pub(crate) async fn launch(&mut self) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.start_apiserver().await {
                Err(Error::Exited { tail, .. })
                    if attempt < 4 && tail.contains("address already in use") =>
                {
                    tracing::info!(cluster = %self.name, "apiserver port was taken; retrying on another port");
                    self.assign_port()?;
                }
                other => break other?,
            }
        }
        self.start_controller_manager().await
    }

    async fn start_apiserver(&self) -> Result<()> {
        let mut process = Process::spawn(
            format!("kube-apiserver (cluster {})", self.name),
            &self.binaries.kube_apiserver()?,
            &self.apiserver_args,
            &self.dir.join("kube-apiserver.log"),
            &self.run_dir,
        )?;
        let http = super::http_client(Some(&self.serving_ca_pem))?;
        let url = format!("{}/readyz", self.url);
        let token = self.admin_token.expose_secret().to_owned();
        super::wait_ready(&mut process, self.options.start_timeout, || {
            let req = http.get(&url).bearer_auth(&token);
            async move { super::expect_ok(req).await }
        })
        .await?;
        *self.apiserver.lock().expect("apiserver lock") = Some(process);
        Ok(())
    }

    async fn start_controller_manager(&self) -> Result<()> {
        if !self.options.controller_manager {
            return Ok(());
        }
        let d = |f: &str| self.dir.join(f).display().to_string();
        let args = vec![
            format!("--kubeconfig={}", d("admin.kubeconfig")),
            "--leader-elect=false".into(),
            "--secure-port=0".into(),
            "--controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token,root-ca-cert-publisher"
                .into(),
            format!("--service-account-private-key-file={}", d("sa.key")),
            format!("--root-ca-file={}", d("serving-ca.crt")),
            "--use-service-account-credentials=false".into(),
            "--profiling=false".into(),
            "--v=1".into(),
        ];
        let mut process = Process::spawn(
            format!("kube-controller-manager (cluster {})", self.name),
            &self.binaries.kube_controller_manager()?,
            &args,
            &self.dir.join("kube-controller-manager.log"),
            &self.run_dir,
        )?;
        if self.options.wait_for_controllers {
            // The ServiceAccount controller creating `default/default` shows that the controller
            // manager is connected and its informers are synced.
            let http = super::http_client(Some(&self.serving_ca_pem))?;
            let url = format!(
                "{}/api/v1/namespaces/default/serviceaccounts/default",
                self.url
            );
            let token = self.admin_token.expose_secret().to_owned();
            super::wait_ready(&mut process, self.options.start_timeout, || {
                let req = http.get(&url).bearer_auth(&token);
                async move { super::expect_ok(req).await }
            })
            .await?;
        }
        *self
            .controller_manager
            .lock()
            .expect("controller-manager lock") = Some(process);
        Ok(())
    }

    /// The cluster's name, as given to the builder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The apiserver's URL, `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PEM of the CA that signed the apiserver's serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.serving_ca_pem
    }

    /// The cluster's directory: certificates, kubeconfig and component logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The admin kubeconfig file (user `admin` in group `system:masters`, context named after the
    /// cluster). Point kubectl or a component under test at it.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The kube-apiserver log file.
    pub fn apiserver_log(&self) -> PathBuf {
        self.dir.join("kube-apiserver.log")
    }

    /// The kube-controller-manager log file (empty when the controller manager is disabled).
    pub fn controller_manager_log(&self) -> PathBuf {
        self.dir.join("kube-controller-manager.log")
    }

    /// The admin identity (bearer token, group `system:masters`).
    pub fn admin(&self) -> Identity {
        Identity {
            user: "admin".into(),
            cluster: self.name.clone(),
            server: self.url.clone(),
            ca_pem: self.serving_ca_pem.clone(),
            credentials: Credentials::Token(self.admin_token.clone()),
        }
    }

    /// A new admin `kube::Client` (see [`Identity::client`] on sharing clients between tests).
    pub async fn client(&self) -> Result<kube::Client> {
        self.admin().client().await
    }

    /// A restricted identity: a client certificate for `user` in `groups`, signed by this
    /// cluster's client CA. It may do only what RBAC grants it; the certificate is not valid on
    /// any other cluster.
    pub fn identity(&self, user: &str, groups: &[&str]) -> Result<Identity> {
        if groups.contains(&"system:masters") {
            return Err(Error::Config(
                "identity(): use admin() for system:masters; identities are meant to be restricted"
                    .into(),
            ));
        }
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let leaf = self.client_ca.issue_client(user, &groups)?;
        Ok(Identity {
            user: user.to_owned(),
            cluster: self.name.clone(),
            server: self.url.clone(),
            ca_pem: self.serving_ca_pem.clone(),
            credentials: Credentials::ClientCertificate {
                cert_pem: leaf.cert_pem,
                key_pem: leaf.key_pem.into(),
            },
        })
    }

    /// An identity that authenticates with a bearer token, e.g. a ServiceAccount token from the
    /// TokenRequest API. `user` only names the kubeconfig entry; the apiserver decides who the
    /// token belongs to.
    pub fn token_identity(&self, user: &str, token: SecretString) -> Identity {
        Identity {
            user: user.to_owned(),
            cluster: self.name.clone(),
            server: self.url.clone(),
            ca_pem: self.serving_ca_pem.clone(),
            credentials: Credentials::Token(token),
        }
    }

    /// Whether the apiserver process is running.
    pub fn is_running(&self) -> bool {
        self.apiserver
            .lock()
            .expect("apiserver lock")
            .as_mut()
            .is_some_and(|p| p.exited().is_none())
    }

    /// Process ids (process groups) of this cluster's running components.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for slot in [&self.apiserver, &self.controller_manager] {
            if let Some(p) = slot.lock().expect("process lock").as_mut()
                && p.exited().is_none()
            {
                pids.push(p.pgid());
            }
        }
        pids
    }

    /// Stops the controller manager and the apiserver gracefully (SIGTERM, then SIGKILL after
    /// 10 s). etcd keeps the data; [`start`](Self::start) brings the cluster back.
    pub async fn stop(&self) {
        for slot in [&self.controller_manager, &self.apiserver] {
            let taken = slot.lock().expect("process lock").take();
            if let Some(mut process) = taken {
                process.stop(Duration::from_secs(10)).await;
            }
        }
    }

    /// Kills the apiserver with SIGKILL, as a crash would; the controller manager keeps running
    /// and reconnects after [`start`](Self::start).
    pub fn kill_apiserver(&self) {
        if let Some(mut process) = self.apiserver.lock().expect("apiserver lock").take() {
            process.kill();
        }
    }

    /// Starts whatever of the cluster is not running, on the same port with the same data and
    /// credentials, and waits until it is ready.
    pub async fn start(&self) -> Result<()> {
        if !self.is_running() {
            self.start_apiserver().await?;
        }
        let kcm_running = self
            .controller_manager
            .lock()
            .expect("controller-manager lock")
            .as_mut()
            .is_some_and(|p| p.exited().is_none());
        if !kcm_running {
            self.start_controller_manager().await?;
        }
        Ok(())
    }

    /// [`stop`](Self::stop), then [`start`](Self::start).
    pub async fn restart(&self) -> Result<()> {
        self.stop().await;
        self.start().await
    }

    /// Sends SIGTERM to every component of the cluster without waiting (teardown).
    pub(crate) fn terminate_all(&self) {
        for slot in [&self.controller_manager, &self.apiserver] {
            if let Some(p) = slot.lock().expect("process lock").as_mut() {
                p.terminate();
            }
        }
    }

    /// Waits for every component to exit, killing what still runs at `deadline`.
    pub(crate) fn wait_all(&self, deadline: Instant) {
        for slot in [&self.controller_manager, &self.apiserver] {
            if let Some(mut p) = slot.lock().expect("process lock").take() {
                p.wait_or_kill(deadline);
            }
        }
    }

    /// The last lines of each component's log, for failure reports.
    pub(crate) fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for log in [self.apiserver_log(), self.controller_manager_log()] {
            if log.exists() {
                out.push_str(&format!(
                    "--- {} (last {lines} lines)\n{}\n",
                    log.display(),
                    log_tail(&log, lines)
                ));
            }
        }
        out
    }
}

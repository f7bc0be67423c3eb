use std::path::PathBuf;
use std::time::Duration;

/// What went wrong while starting, using or stopping a test environment.
///
/// Every variant names the operation and the component, and those about a process carry the path
/// of its log and the log's last lines, so a failed test shows why without a second run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No directory with the test binaries was found.
    #[error(
        "no test binaries found (looked in: {searched}). Build them with `testbins/build.sh` (needs Go 1.26; \
         see docs/testenv.md) or set KLUTCH_TESTBIN_DIR to a directory holding \
         kube-apiserver, kube-controller-manager, kubectl, etcd and dex"
    )]
    NoBinaryDir {
        /// The directories that were searched, comma-separated.
        searched: String,
    },
    /// A required binary is missing from the binary directory.
    #[error(
        "test binary `{name}` not found in {dir}. Rebuild with `testbins/build.sh` or point KLUTCH_TESTBIN_DIR \
         at a directory that has it"
    )]
    BinaryMissing {
        /// The binary's file name.
        name: &'static str,
        /// The directory that was searched.
        dir: PathBuf,
    },
    /// A file or directory of the environment could not be written.
    #[error("write {path}")]
    Write {
        /// The path that could not be written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A free loopback port could not be found.
    #[error("find a free port on 127.0.0.1")]
    FreePort(#[source] std::io::Error),
    /// Generating a key or certificate failed.
    #[error("generate {what}")]
    Certificate {
        /// What was being generated.
        what: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// A component could not be started.
    #[error("start {component}")]
    Spawn {
        /// The component, e.g. `kube-apiserver (cluster app)`.
        component: String,
        /// The I/O error from spawning it.
        #[source]
        source: std::io::Error,
    },
    /// A component exited while it was expected to run.
    #[error("{component} exited ({status}); log {log}:\n{tail}")]
    Exited {
        /// The component.
        component: String,
        /// How it exited.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// A component did not become ready in time.
    #[error("{component} not ready after {waited:?} ({last_error}); log {log}:\n{tail}")]
    NotReady {
        /// The component.
        component: String,
        /// How long the harness waited.
        waited: Duration,
        /// What the last readiness probe saw.
        last_error: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// An HTTP request made by the harness failed.
    #[error("{what}")]
    Http {
        /// The request, e.g. `password grant at http://127.0.0.1:5556/dex/token`.
        what: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP request returned an unexpected status.
    #[error("{what}: HTTP {status}: {body}")]
    HttpStatus {
        /// The request.
        what: String,
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// A kubeconfig could not be built or serialised.
    #[error("build kubeconfig for {context}")]
    Kubeconfig {
        /// The context the kubeconfig is for.
        context: String,
        /// The underlying error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// A kubeconfig could not be serialised to YAML.
    #[error("serialise kubeconfig for {context}: {message}")]
    SerializeKubeconfig {
        /// The context the kubeconfig is for.
        context: String,
        /// The serialiser's message.
        message: String,
    },
    /// A `kube::Client` could not be built.
    #[error("build a Kubernetes client for {context}")]
    Client {
        /// The context the client is for.
        context: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },
    /// A Kubernetes API call made by the harness failed.
    #[error("{what}")]
    Api {
        /// The call, e.g. `wait for the default ServiceAccount in cluster app`.
        what: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },
    /// Something the harness waited for did not happen in time.
    #[error("{what}: not done after {waited:?}")]
    Timeout {
        /// What was awaited, e.g. `CRD widgets.example.com to become Established`.
        what: String,
        /// How long the harness waited.
        waited: Duration,
    },
    /// The scripted browser met a page it cannot handle.
    #[error("scripted browser: {0}")]
    Browser(String),
    /// The configuration given to the builder is not usable.
    #[error("invalid test environment configuration: {0}")]
    Config(String),
    /// Hashing a Dex user's password failed.
    #[error("hash the password of Dex user {email}")]
    HashPassword {
        /// The user.
        email: String,
        /// The underlying error.
        #[source]
        source: bcrypt::BcryptError,
    },
    /// A JSON document could not be encoded or decoded.
    #[error("{what}")]
    Json {
        /// What was being encoded or decoded.
        what: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

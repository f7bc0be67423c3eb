//! An a9s-compatible development broker backed by a real PostgreSQL server (feature
//! `devbroker`; the engine of `bins/a9s-dev-broker`).
//!
//! It speaks what `provider-anynines` calls, on one listener:
//!
//! * the OSB API v2.17 (`/v2/catalog`, instances, `last_operation`, bindings), offering the
//!   `a9s-postgresql13/15/17` services with the plans of the package's `a9s-postgresql`
//!   composition ([`catalog`]);
//! * the a9s broker extensions (`GET /instances[/{id}]`, `HEAD /instances`,
//!   `HEAD /osb_ext/v1/healthy`, fetch instance with `id` and `context`);
//! * the a9s Backup Manager subset (`/instances/{id}/backups`, `…/restore`, `/restores`,
//!   `/config`, `PUT /instances/{id}`, `GET /v2/healthy`).
//!
//! Provision (asynchronous only, like a9s) creates a database and a NOLOGIN owner role; bind
//! creates a login role with a random password that acts as the owner, and returns a9s-shaped
//! PostgreSQL credentials; unbind ends the role's sessions and drops it; deprovision drops the
//! database and every role; a backup is a `pg_dump` kept in the broker's state database, a
//! restore loads it back with `pg_restore`. State lives in its own database on the same server
//! ([`DevBrokerConfig::state_database`]), so the broker can be restarted at any time and resumes
//! unfinished work. Database and role names come from broker-assigned numbers
//! (`a9s_i<n>`, `a9s_i<n>_owner`, `a9s_i<n>_b<m>`), never from request input.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use klutch_a9s::devbroker::{DevBroker, DevBrokerConfig};
//! let broker = DevBroker::start(
//!     DevBrokerConfig::new("postgres://postgres:pw@127.0.0.1:5432/postgres", "admin", "secret"),
//! )
//! .await?;
//! let a9s = klutch_a9s::broker::A9sBroker::new(broker.http_config())?; // broker + OSB client
//! let bm = klutch_a9s::backup::BackupManager::new(broker.http_config())?; // same listener
//! println!("listening on {}", broker.url());
//! broker.shutdown().await;
//! # let _ = (a9s, bm); Ok(()) }
//! ```

pub mod catalog;
mod engine;
mod http;
pub mod sql;
mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use crate::transport::HttpConfig;
use engine::Engine;

/// A `Result` with this module's [`DevBrokerError`].
pub type Result<T, E = DevBrokerError> = std::result::Result<T, E>;

/// Why the development broker could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevBrokerError {
    /// The configuration is not usable.
    #[error("invalid development broker configuration: {0}")]
    Config(String),
    /// Connecting to the PostgreSQL server failed.
    #[error("connect to PostgreSQL database {database}")]
    Connect {
        /// The database.
        database: String,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("{what}")]
    Sql {
        /// What the broker was doing.
        what: String,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// `pg_dump` or `pg_restore` failed.
    #[error("{tool}: {message}")]
    Tool {
        /// The program.
        tool: String,
        /// Its error output.
        message: String,
    },
    /// The listener could not be bound.
    #[error("listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Configuration of a [`DevBroker`].
#[derive(Clone)]
pub struct DevBrokerConfig {
    /// Superuser URL of the PostgreSQL server the broker manages,
    /// `postgres://user:password@host:port/postgres`.
    pub admin_url: SecretString,
    /// Where to listen (default `127.0.0.1:0`, a free loopback port).
    pub listen: SocketAddr,
    /// Basic-auth user the clients must send.
    pub username: String,
    /// Basic-auth password the clients must send.
    pub password: SecretString,
    /// Host written into binding credentials (default: the admin URL's host).
    pub public_host: Option<String>,
    /// Port written into binding credentials (default: the admin URL's port).
    pub public_port: Option<u16>,
    /// Directory of `pg_dump` and `pg_restore` (default: the highest
    /// `/usr/lib/postgresql/<version>/bin`, else `PATH`).
    pub pg_bin_dir: Option<PathBuf>,
    /// The database holding the broker's state (default `a9s_dev_broker`).
    pub state_database: String,
    /// Prefix of the databases and roles it creates, `[a-z][a-z0-9_]{0,15}` (default `a9s`).
    pub name_prefix: String,
    /// Waits this long before a provision does its work (default 0): makes the asynchronous
    /// provision observable, e.g. to try a broker restart mid-provision.
    pub provision_delay: Duration,
}

impl std::fmt::Debug for DevBrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevBrokerConfig")
            .field("listen", &self.listen)
            .field("username", &self.username)
            .field("public_host", &self.public_host)
            .field("state_database", &self.state_database)
            .field("name_prefix", &self.name_prefix)
            .finish_non_exhaustive()
    }
}

impl DevBrokerConfig {
    /// The defaults, with the server's superuser URL and the basic-auth credentials.
    pub fn new(
        admin_url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        DevBrokerConfig {
            admin_url: SecretString::from(admin_url.into()),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            username: username.into(),
            password: SecretString::from(password.into()),
            public_host: None,
            public_port: None,
            pg_bin_dir: None,
            state_database: "a9s_dev_broker".into(),
            name_prefix: "a9s".into(),
            provision_delay: Duration::ZERO,
        }
    }

    fn engine(&self) -> Result<Engine> {
        let admin: tokio_postgres::Config =
            self.admin_url.expose_secret().parse().map_err(|e| {
                DevBrokerError::Config(format!("the admin URL is not a PostgreSQL URL: {e}"))
            })?;
        if !sql::valid_prefix(&self.name_prefix) {
            return Err(DevBrokerError::Config(format!(
                "name prefix `{}` must match [a-z][a-z0-9_]{{0,15}}",
                self.name_prefix
            )));
        }
        if self.state_database.is_empty() || self.state_database.len() > 63 {
            return Err(DevBrokerError::Config(
                "the state database name must have 1 to 63 characters".into(),
            ));
        }
        let host = match admin.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = admin.get_ports().first().copied().unwrap_or(5432);
        let bin_dir = self.pg_bin_dir.clone().or_else(find_pg_bin_dir);
        Ok(Engine {
            admin,
            state_db: self.state_database.clone(),
            prefix: self.name_prefix.clone(),
            public_host: self.public_host.clone().unwrap_or(host),
            public_port: self.public_port.unwrap_or(port),
            bin_dir,
            provision_delay: self.provision_delay,
        })
    }
}

/// The highest `/usr/lib/postgresql/<version>/bin` holding `pg_dump` (Debian's layout).
pub fn find_pg_bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_dump").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// A running development broker. Dropping it stops the listener and every running job at once
/// (like a crash: unfinished work resumes at the next start); [`shutdown`](Self::shutdown) stops
/// gracefully.
#[derive(Debug)]
pub struct DevBroker {
    addr: SocketAddr,
    username: String,
    password: SecretString,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    jobs: Arc<http::Jobs>,
}

impl DevBroker {
    /// Connects to the server, prepares the state database, resumes unfinished work and starts
    /// listening.
    pub async fn start(config: DevBrokerConfig) -> Result<Self> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (addr, server, jobs) = http::start(&config, async {
            let _ = rx.await;
        })
        .await?;
        Ok(DevBroker {
            addr,
            username: config.username.clone(),
            password: config.password.clone(),
            stop: Some(tx),
            server: Some(server),
            jobs,
        })
    }

    /// Runs until `shutdown` resolves (for binaries), then stops gracefully.
    pub async fn serve(
        config: DevBrokerConfig,
        shutdown: impl Future<Output = ()> + Send + 'static,
        on_listening: impl FnOnce(SocketAddr),
    ) -> Result<()> {
        let (addr, server, jobs) = http::start(&config, shutdown).await?;
        on_listening(addr);
        let _ = server.await;
        jobs.abort_all();
        Ok(())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Client settings (URL and basic auth) for [`crate::broker::A9sBroker`] and
    /// [`crate::backup::BackupManager`].
    pub fn http_config(&self) -> HttpConfig {
        HttpConfig::new(self.url()).basic_auth(&self.username, self.password.expose_secret())
    }

    /// Stops accepting requests, lets running requests finish, then stops the jobs (they
    /// resume at the next start).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        self.jobs.abort_all();
    }
}

impl Drop for DevBroker {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
        self.jobs.abort_all();
    }
}

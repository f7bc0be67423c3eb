//! A real PostgreSQL server for tests: Debian's `postgresql` package (`initdb` and `postgres`
//! from `/usr/lib/postgresql/<version>/bin`), started in a temporary directory on a free
//! loopback port, or an existing server given by URL.
//!
//! * **Binaries:** [`PG_BIN_DIR_ENV`] (`KLUTCH_PG_BIN_DIR`) names the directory holding `initdb`,
//!   `postgres`, `pg_isready` and `pg_ctl`; without it the highest version under
//!   `/usr/lib/postgresql/*/bin` that has them is used ([`find_bin_dir`]).
//! * **User:** `initdb` refuses to run as root, and CI runs as root. As root the server runs as
//!   the `postgres` user that Debian's package creates (or `nobody` when there is none), via
//!   `setpriv` from util-linux; otherwise it runs as the current user.
//! * **Authentication:** `scram-sha-256` on 127.0.0.1 for everyone (so a wrong password is
//!   really refused); the superuser is `postgres` with a random password ([`Postgres::url`]).
//! * **Existing server:** [`PostgresBuilder::existing`] or [`POSTGRES_URL_ENV`]
//!   (`KLUTCH_TESTENV_POSTGRES_URL`) use a server that is already running; nothing is started.
//!
//! ```no_run
//! # async fn demo() -> klutch_sdk::testenv::Result<()> {
//! use klutch_sdk::testenv::postgres::Postgres;
//! let mut pg = Postgres::builder().start().await?;
//! println!("superuser URL: {}", pg.url());
//! pg.restart().await?; // same data, same port
//! pg.stop().await;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rand::Rng as _;

use super::process::{Janitor, Process, log_tail};
use super::{Error, Result, free_port};

/// Environment variable naming the directory with `initdb`, `postgres`, `pg_ctl`, `pg_isready`.
pub const PG_BIN_DIR_ENV: &str = "KLUTCH_PG_BIN_DIR";
/// Environment variable with the superuser URL of an existing server to use instead.
pub const POSTGRES_URL_ENV: &str = "KLUTCH_TESTENV_POSTGRES_URL";
/// Where Debian installs the server binaries, one directory per major version.
pub const DEBIAN_PG_LIB: &str = "/usr/lib/postgresql";

/// Finds the PostgreSQL binary directory: [`PG_BIN_DIR_ENV`] if set, else the highest
/// `/usr/lib/postgresql/<version>/bin` that holds `program`.
pub fn find_bin_dir(program: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(PG_BIN_DIR_ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.join(program).is_file() {
            Ok(dir)
        } else {
            Err(Error::Config(format!(
                "{PG_BIN_DIR_ENV}={} has no `{program}`",
                dir.display()
            )))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_PG_LIB)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join(program).is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).ok_or_else(|| {
        Error::Config(format!(
            "no PostgreSQL server found: no {DEBIAN_PG_LIB}/<version>/bin/{program}. Install Debian's \
             `postgresql` package (apt-get install postgresql) or set {PG_BIN_DIR_ENV}"
        ))
    })
}

/// The account the server runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

/// Looks a user up in `/etc/passwd`.
fn passwd_entry(name: &str) -> Option<RunAs> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| RunAs {
            name: name.to_owned(),
            uid: f[2].parse().unwrap_or(u32::MAX),
            gid: f[3].parse().unwrap_or(u32::MAX),
        })
    })
}

/// Whether this process runs as root (read from `/proc/self/status`, no `unsafe`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Configures and starts a [`Postgres`].
#[derive(Debug, Clone)]
pub struct PostgresBuilder {
    bin_dir: Option<PathBuf>,
    existing: Option<String>,
    user: Option<String>,
    start_timeout: Duration,
    settings: Vec<(String, String)>,
}

impl Default for PostgresBuilder {
    fn default() -> Self {
        PostgresBuilder {
            bin_dir: None,
            existing: None,
            user: None,
            start_timeout: Duration::from_secs(60),
            settings: Vec::new(),
        }
    }
}

impl PostgresBuilder {
    /// Uses this directory for `initdb`, `postgres`, `pg_ctl` and `pg_isready`.
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Uses an already running server (a superuser URL such as
    /// `postgres://postgres:pw@127.0.0.1:5432/postgres`) instead of starting one.
    pub fn existing(mut self, url: impl Into<String>) -> Self {
        self.existing = Some(url.into());
        self
    }

    /// When running as root: the unprivileged account to run the server as (default `postgres`,
    /// else `nobody`).
    pub fn run_as(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// How long the server may take to accept connections (default 60 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Passes `-c name=value` to the server, e.g. `("wal_level", "logical")`.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Starts the server (initdb, then postgres) and waits until it accepts connections; or,
    /// with [`existing`](Self::existing) or [`POSTGRES_URL_ENV`], just records the URL.
    pub async fn start(self) -> Result<Postgres> {
        let existing = self.existing.clone().or_else(|| {
            std::env::var(POSTGRES_URL_ENV)
                .ok()
                .filter(|u| !u.is_empty())
        });
        if let Some(url) = existing {
            return Ok(Postgres { url, server: None });
        }
        let bin = match &self.bin_dir {
            Some(d) => d.clone(),
            None => find_bin_dir("postgres")?,
        };
        for p in ["initdb", "postgres", "pg_ctl", "pg_isready"] {
            if !bin.join(p).is_file() {
                return Err(Error::Config(format!(
                    "`{p}` not found in {}; install Debian's `postgresql` package",
                    bin.display()
                )));
            }
        }
        let run_as = if is_root() {
            let wanted = self.user.clone();
            let found = match &wanted {
                Some(u) => passwd_entry(u),
                None => passwd_entry("postgres").or_else(|| passwd_entry("nobody")),
            };
            Some(found.ok_or_else(|| {
                Error::Config(format!(
                    "running as root, and there is no unprivileged user `{}` to run PostgreSQL as",
                    wanted.unwrap_or_else(|| "postgres` or `nobody".into())
                ))
            })?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("klutch-pg-")
            .tempdir()
            .map_err(|source| Error::Write {
                path: std::env::temp_dir(),
                source,
            })?;
        let path = dir.path().to_owned();
        let janitor = Janitor::spawn(&path)?;
        let password: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        let data = path.join("data");
        let pwfile = path.join("pwfile");
        write(&pwfile, password.as_bytes())?;
        std::fs::create_dir(&data).map_err(|source| Error::Write {
            path: data.clone(),
            source,
        })?;
        if let Some(r) = &run_as {
            use std::os::unix::fs::PermissionsExt as _;
            // The run directory stays root's; the server's user may only enter it.
            set_mode(&path, 0o711)?;
            for p in [&data, &pwfile] {
                std::os::unix::fs::chown(p, Some(r.uid), Some(r.gid)).map_err(|source| {
                    Error::Write {
                        path: p.clone(),
                        source,
                    }
                })?;
            }
            let _ = std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600));
        }
        let log = path.join("initdb.log");
        let mut initdb = command(&run_as, &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C"])
            .args(["--auth=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run_logged("initdb", initdb, &log)?;
        let _ = std::fs::remove_file(&pwfile);
        let port = free_port()?;
        let mut server = Server {
            _dir: dir,
            path,
            bin,
            data,
            run_as,
            port,
            settings: self.settings.clone(),
            timeout: self.start_timeout,
            process: None,
            janitor: Some(janitor),
            starts: 0,
        };
        server.launch().await?;
        Ok(Postgres {
            url: format!("postgres://postgres:{password}@127.0.0.1:{port}/postgres"),
            server: Some(server),
        })
    }
}

fn write(path: &Path, content: &[u8]) -> Result<()> {
    std::fs::write(path, content).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        Error::Write {
            path: path.to_owned(),
            source,
        }
    })
}

/// `program`, wrapped in `setpriv` when it must run as another user.
fn command(run_as: &Option<RunAs>, program: &Path) -> Command {
    match run_as {
        Some(r) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", r.uid))
                .arg(format!("--regid={}", r.gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Program and arguments of `command`, for [`Process::spawn`].
fn argv(c: &Command) -> (PathBuf, Vec<String>) {
    (
        PathBuf::from(c.get_program()),
        c.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    )
}

fn run_logged(what: &str, mut c: Command, log: &Path) -> Result<()> {
    let out = c.output().map_err(|source| Error::Spawn {
        component: what.into(),
        source,
    })?;
    let mut text = out.stdout;
    text.extend_from_slice(&out.stderr);
    write(log, &text)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Exited {
            component: what.into(),
            status: out.status.to_string(),
            log: log.to_owned(),
            tail: log_tail(log, 25),
        })
    }
}

#[derive(Debug)]
struct Server {
    _dir: tempfile::TempDir,
    path: PathBuf,
    bin: PathBuf,
    data: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    settings: Vec<(String, String)>,
    timeout: Duration,
    process: Option<Process>,
    janitor: Option<Janitor>,
    starts: u32,
}

impl Server {
    async fn launch(&mut self) -> Result<()> {
        self.starts += 1;
        let log = self.path.join(format!("postgres-{}.log", self.starts));
        let mut c = command(&self.run_as, &self.bin.join("postgres"));
        c.arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.data.display()))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        for (k, v) in &self.settings {
            c.arg("-c").arg(format!("{k}={v}"));
        }
        let (program, args) = argv(&c);
        let mut process = Process::spawn("postgres", &program, &args, &log, &self.path)?;
        let started = Instant::now();
        loop {
            process.check_running()?;
            let probe = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status();
            let last = match probe {
                Ok(s) if s.success() => break,
                Ok(s) => format!("pg_isready: {s}"),
                Err(e) => format!("pg_isready: {e}"),
            };
            if started.elapsed() > self.timeout {
                return Err(Error::NotReady {
                    component: "postgres".into(),
                    waited: self.timeout,
                    last_error: last,
                    log: log.clone(),
                    tail: log_tail(&log, 25),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.process = Some(process);
        Ok(())
    }

    /// Fast shutdown (`pg_ctl stop -m fast`: open sessions are ended, not waited for).
    fn shutdown(&mut self) {
        let Some(mut p) = self.process.take() else {
            return;
        };
        if p.exited().is_none() {
            let mut c = command(&self.run_as, &self.bin.join("pg_ctl"));
            c.arg("-D")
                .arg(&self.data)
                .args(["stop", "-m", "fast", "-w", "-t", "30"]);
            let _ = c.output();
            p.wait_or_kill(Instant::now() + Duration::from_secs(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(j) = self.janitor.take() {
            j.finish(false);
        }
    }
}

/// A running PostgreSQL server (or an existing one). Dropping it stops the server and removes
/// its directory. See the [module documentation](self).
#[derive(Debug)]
pub struct Postgres {
    url: String,
    server: Option<Server>,
}

impl Postgres {
    /// A builder with the defaults.
    pub fn builder() -> PostgresBuilder {
        PostgresBuilder::default()
    }

    /// The superuser URL, `postgres://postgres:<password>@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same URL with another database name.
    pub fn url_for(&self, database: &str) -> String {
        match self.url.rfind('/') {
            Some(i) if i > "postgres://".len() => format!("{}/{database}", &self.url[..i]),
            _ => format!("{}/{database}", self.url),
        }
    }

    /// The loopback port, or `None` for an existing server.
    pub fn port(&self) -> Option<u16> {
        self.server.as_ref().map(|s| s.port)
    }

    /// The directory holding the server's binaries, or `None` for an existing server.
    pub fn bin_dir(&self) -> Option<&Path> {
        self.server.as_ref().map(|s| s.bin.as_path())
    }

    /// The server's log (of its latest start), or `None` for an existing server.
    pub fn log(&self) -> Option<PathBuf> {
        self.server
            .as_ref()
            .map(|s| s.path.join(format!("postgres-{}.log", s.starts)))
    }

    /// Whether this harness started the server (and so can stop and restart it).
    pub fn is_managed(&self) -> bool {
        self.server.is_some()
    }

    /// Stops the server with a fast shutdown (open sessions are ended; blocks the calling
    /// thread for the shutdown, typically well under a second). Does nothing for an existing
    /// server.
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.as_mut() {
            s.shutdown();
        }
    }

    /// Stops (if running) and starts the server again on the same data directory and port.
    pub async fn restart(&mut self) -> Result<()> {
        let Some(s) = self.server.as_mut() else {
            return Err(Error::Config(
                "an existing PostgreSQL server given by URL cannot be restarted".into(),
            ));
        };
        s.shutdown();
        s.launch().await
    }
}

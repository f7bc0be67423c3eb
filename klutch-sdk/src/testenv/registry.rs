//! A local OCI registry ([Distribution](https://distribution.github.io/distribution/) v3) over
//! TLS, for tests that push and pull images and Crossplane packages.
//!
//! The registry listens on `127.0.0.1:<free port>` with a serving certificate from its own test
//! CA ([`Registry::ca_file`]): clients such as `crane`, the Crossplane CLI or Crossplane core trust
//! it through `SSL_CERT_FILE` or their CA-bundle option, so nothing runs with `--insecure`.
//! Storage is a directory under the registry's run directory; both go away on drop.
//!
//! ```no_run
//! use klutch_sdk::testenv::Registry;
//!
//! # async fn demo() -> klutch_sdk::testenv::Result<()> {
//! let registry = Registry::start().await?;
//! println!("push to {}/klutch/konnector:v1.0.0", registry.host());
//! println!("trust {}", registry.ca_file().display());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::pki::Ca;
use super::process::{Janitor, Process};
use super::{Binaries, Error, KEEP_ENV, Result, free_port, write_file, write_secret_file};

/// How long [`Registry::start`] waits for `/v2/` to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Distribution registry on `https://127.0.0.1:<port>`.
#[derive(Debug)]
pub struct Registry {
    host: String,
    ca_pem: String,
    ca_file: PathBuf,
    log: PathBuf,
    path: PathBuf,
    keep: bool,
    dir: Option<tempfile::TempDir>,
    process: Mutex<Option<Process>>,
    janitor: Option<Janitor>,
}

impl Registry {
    /// Starts a registry with the binaries of [`Binaries::find`] and waits until it answers.
    pub async fn start() -> Result<Self> {
        Self::start_with(&Binaries::find()?).await
    }

    /// Starts a registry with `registry` from `binaries` and waits until `GET /v2/` is 200.
    pub async fn start_with(binaries: &Binaries) -> Result<Self> {
        crate::tls::install_crypto_provider();
        let program = binaries.registry()?;
        let dir = tempfile::Builder::new()
            .prefix("klutch-registry-")
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
        let ca = Ca::new("klutch-test-registry-ca")?;
        let leaf = ca.issue_server("klutch-test-registry")?;
        let ca_file = path.join("ca.crt");
        let cert_file = path.join("tls.crt");
        let key_file = path.join("tls.key");
        write_file(&ca_file, ca.cert_pem())?;
        write_file(&cert_file, &leaf.cert_pem)?;
        write_secret_file(&key_file, &leaf.key_pem)?;
        let storage = path.join("storage");
        std::fs::create_dir_all(&storage).map_err(|source| Error::Write {
            path: storage.clone(),
            source,
        })?;
        let log = path.join("registry.log");
        let mut registry = Registry {
            host: String::new(),
            ca_pem: ca.cert_pem().to_owned(),
            ca_file,
            log: log.clone(),
            path: path.clone(),
            keep,
            dir: Some(dir),
            process: Mutex::new(None),
            janitor,
        };
        let http = super::http_client(Some(&registry.ca_pem))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let host = format!("127.0.0.1:{port}");
            let config = path.join("config.yml");
            write_file(
                &config,
                &render_config(&host, &storage, &cert_file, &key_file),
            )?;
            let mut process = Process::spawn(
                "registry",
                &program,
                &["serve".to_owned(), config.display().to_string()],
                &log,
                &path,
            )?;
            let url = format!("https://{host}/v2/");
            let ready = super::wait_ready(&mut process, START_TIMEOUT, || {
                let req = http.get(&url);
                async move { super::expect_ok(req).await }
            })
            .await;
            match ready {
                Err(Error::Exited { tail, .. })
                    if attempt < 4 && tail.contains("address already in use") =>
                {
                    continue;
                }
                Err(e) => {
                    process.terminate();
                    process.wait_or_kill(Instant::now() + Duration::from_secs(5));
                    return Err(e);
                }
                Ok(()) => {}
            }
            registry.host = host;
            *registry.process.lock().expect("registry lock") = Some(process);
            tracing::info!(host = %registry.host, dir = %path.display(), "registry ready");
            return Ok(registry);
        }
    }

    /// `127.0.0.1:<port>`: the registry part of image references, e.g.
    /// `127.0.0.1:5123/klutch/konnector:v1.0.0`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The CA certificate (PEM) that signed the registry's serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A file holding [`Registry::ca_pem`]: `SSL_CERT_FILE` for Go clients such as `crane`, the
    /// CA bundle for Crossplane core's `--ca-bundle-path`.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The registry's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The registry's run directory (configuration, certificates, storage, log).
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// Process id (process group) of the registry, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process
            .lock()
            .expect("registry lock")
            .as_mut()
            .and_then(|p| p.exited().is_none().then(|| p.pgid()))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- registry log ({}):\n{}",
                self.log.display(),
                super::log_tail(&self.log, 40)
            );
        }
        if let Some(mut p) = self.process.lock().expect("registry lock").take() {
            p.terminate();
            p.wait_or_kill(Instant::now() + Duration::from_secs(5));
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

/// Distribution's configuration (JSON, which its YAML parser reads as is): filesystem storage,
/// TLS on loopback, deletes allowed, no storage health check noise.
fn render_config(host: &str, storage: &Path, cert: &Path, key: &Path) -> String {
    serde_json::json!({
        "version": 0.1,
        "log": { "level": "info", "formatter": "text" },
        "storage": {
            "filesystem": { "rootdirectory": storage },
            "delete": { "enabled": true },
        },
        "http": {
            "addr": host,
            "tls": { "certificate": cert, "key": key },
        },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_serves_tls_on_the_given_address() {
        let doc: serde_json::Value = serde_json::from_str(&render_config(
            "127.0.0.1:1",
            Path::new("/s"),
            Path::new("/c"),
            Path::new("/k"),
        ))
        .unwrap();
        assert_eq!(doc["http"]["addr"], "127.0.0.1:1");
        assert_eq!(doc["http"]["tls"]["certificate"], "/c");
        assert_eq!(doc["http"]["tls"]["key"], "/k");
        assert_eq!(doc["storage"]["filesystem"]["rootdirectory"], "/s");
    }
}

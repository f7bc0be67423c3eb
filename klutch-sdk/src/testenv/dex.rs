//! Dex, a real OpenID Connect provider, with in-memory storage, static users and static clients.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::process::Process;
use super::{Binaries, Error, Result, free_port, write_secret_file};

/// A user Dex accepts: email (the login name), password, display name and a stable id.
#[derive(Clone, Debug)]
pub struct DexUser {
    /// Login name and the `email` claim.
    pub email: String,
    /// Password in clear; the harness hashes it for Dex's configuration.
    pub password: String,
    /// The `name` claim.
    pub username: String,
    /// The `sub` claim's user id.
    pub user_id: String,
}

impl DexUser {
    /// A user with the given email and password; name and id are derived from the email.
    pub fn new(email: &str, password: &str) -> Self {
        let username = email.split('@').next().unwrap_or(email).to_owned();
        DexUser {
            email: email.to_owned(),
            password: password.to_owned(),
            user_id: format!("uid-{username}"),
            username,
        }
    }
}

/// An OAuth2 client registered with Dex.
#[derive(Clone, Debug)]
pub struct DexClient {
    /// The client id.
    pub id: String,
    /// The client secret; `None` for a public client.
    pub secret: Option<String>,
    /// Redirect URIs, matched exactly. A public client without any accepts loopback redirects on
    /// any port and the device flow's `/device/callback`.
    pub redirect_uris: Vec<String>,
}

/// The backend `/callback` URLs the default `klutch-backend` client accepts: those of an
/// `example-backend` on its default listen address (`127.0.0.1:8080`).
pub const DEFAULT_BACKEND_REDIRECT_URIS: [&str; 2] = [
    "http://127.0.0.1:8080/callback",
    "http://localhost:8080/callback",
];

impl DexClient {
    /// A confidential client (e.g. a binding backend's browser login) with a secret and exact
    /// redirect URIs. Confidential clients do not run the device flow: Dex would keep the
    /// secret of the device request and (up to v2.45.1) copy it into a browser redirect; use a
    /// [`public`](Self::public) client for that.
    pub fn confidential(id: &str, secret: &str, redirect_uris: &[&str]) -> Self {
        DexClient {
            id: id.to_owned(),
            secret: Some(secret.to_owned()),
            redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
        }
    }

    /// A public client (e.g. a CLI, or a backend's device flow) without a secret or registered
    /// redirect URIs.
    pub fn public(id: &str) -> Self {
        DexClient {
            id: id.to_owned(),
            secret: None,
            redirect_uris: Vec::new(),
        }
    }
}

/// What Dex is started with. The default has one user, `admin@example.com` with password
/// `password`, a confidential client `klutch-backend` (secret `klutch-backend-secret`, redirect
/// URIs [`DEFAULT_BACKEND_REDIRECT_URIS`]), a public client `klutch-backend-device` for a
/// backend's device flow (`--oidc-device-client-id`) and a public client `klutch-cli`.
#[derive(Clone, Debug)]
pub struct DexConfig {
    /// Static users.
    pub users: Vec<DexUser>,
    /// Static clients.
    pub clients: Vec<DexClient>,
}

impl Default for DexConfig {
    fn default() -> Self {
        DexConfig {
            users: vec![DexUser::new("admin@example.com", "password")],
            clients: vec![
                DexClient::confidential(
                    "klutch-backend",
                    "klutch-backend-secret",
                    &DEFAULT_BACKEND_REDIRECT_URIS,
                ),
                DexClient::public("klutch-backend-device"),
                DexClient::public("klutch-cli"),
            ],
        }
    }
}

impl DexConfig {
    /// Adds `uris` (absolute `/callback` URLs of backends) to the redirect URIs of every
    /// confidential client, e.g. for a backend on another address than the default's.
    pub fn with_backend_redirect_uris(mut self, uris: &[String]) -> Self {
        for client in self.clients.iter_mut().filter(|c| c.secret.is_some()) {
            for uri in uris {
                if !client.redirect_uris.contains(uri) {
                    client.redirect_uris.push(uri.clone());
                }
            }
        }
        self
    }
}

/// Tokens from Dex's token endpoint.
#[derive(Clone, Debug, Deserialize)]
pub struct DexTokens {
    /// The ID token (a signed JWT).
    pub id_token: String,
    /// The access token.
    pub access_token: String,
    /// The refresh token, when `offline_access` was requested.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Lifetime of the access token in seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl DexTokens {
    /// The ID token's claims, decoded but **not verified** (for assertions in tests).
    pub fn id_token_claims(&self) -> Result<serde_json::Value> {
        let payload = self.id_token.split('.').nth(1).unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|e| Error::Config(format!("ID token payload is not base64url: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: "decode ID token claims".into(),
            source,
        })
    }
}

/// A running Dex on `http://127.0.0.1:<port>/dex`.
#[derive(Debug)]
pub struct Dex {
    issuer: String,
    config: DexConfig,
    log: PathBuf,
    process: Mutex<Option<Process>>,
}

impl Dex {
    pub(crate) async fn start(
        config: DexConfig,
        run_dir: &Path,
        binaries: &Binaries,
        timeout: Duration,
    ) -> Result<Self> {
        let program = binaries.dex()?;
        let dir = run_dir.join("dex");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
        let log = dir.join("dex.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let issuer = format!("http://127.0.0.1:{port}/dex");
            let config_path = dir.join("config.yaml");
            write_secret_file(&config_path, &render_config(&config, &issuer, port)?)?;
            let mut process = Process::spawn(
                "dex",
                &program,
                &["serve".to_owned(), config_path.display().to_string()],
                &log,
                run_dir,
            )?;
            let http = super::http_client(None)?;
            let url = format!("{issuer}/.well-known/openid-configuration");
            let ready = super::wait_ready(&mut process, timeout, || {
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
                other => other?,
            }
            return Ok(Dex {
                issuer,
                config,
                log,
                process: Mutex::new(Some(process)),
            });
        }
    }

    /// The issuer URL, exactly as Dex puts it into tokens (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The users and clients Dex was started with.
    pub fn config(&self) -> &DexConfig {
        &self.config
    }

    /// Dex's log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Process id (process group) of Dex, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process
            .lock()
            .expect("dex lock")
            .as_mut()
            .and_then(|p| p.exited().is_none().then(|| p.pgid()))
    }

    /// Logs `email` in with the resource-owner password grant: the quickest way to a real ID token.
    /// `client_id` must be a confidential client of the configuration.
    pub async fn password_grant(
        &self,
        client_id: &str,
        email: &str,
        password: &str,
    ) -> Result<DexTokens> {
        let client = self
            .config
            .clients
            .iter()
            .find(|c| c.id == client_id)
            .ok_or_else(|| Error::Config(format!("Dex has no client {client_id}")))?;
        let url = format!("{}/token", self.issuer);
        let what = format!("password grant for {email} at {url}");
        let resp = super::http_client(None)?
            .post(&url)
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&[
                ("grant_type", "password"),
                ("username", email),
                ("password", password),
                ("scope", "openid email profile offline_access"),
            ])
            .send()
            .await
            .map_err(|source| Error::Http {
                what: what.clone(),
                source,
            })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|source| Error::Http {
            what: what.clone(),
            source,
        })?;
        if !status.is_success() {
            return Err(Error::HttpStatus {
                what,
                status: status.as_u16(),
                body: excerpt(&body),
            });
        }
        serde_json::from_str(&body).map_err(|source| Error::Json { what, source })
    }

    pub(crate) fn terminate(&self) {
        if let Some(p) = self.process.lock().expect("dex lock").as_mut() {
            p.terminate();
        }
    }

    pub(crate) fn wait(&self, deadline: Instant) {
        if let Some(mut p) = self.process.lock().expect("dex lock").take() {
            p.wait_or_kill(deadline);
        }
    }
}

fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}

/// Dex's configuration as JSON (a YAML subset Dex reads as is).
fn render_config(config: &DexConfig, issuer: &str, port: u16) -> Result<String> {
    let mut users = Vec::new();
    for user in &config.users {
        // Dex refuses to log in users whose hash has a bcrypt cost below 10 ("does not meet
        // minimum cost requirement"), so use exactly that minimum: about 50 ms per user.
        let hash = bcrypt::hash(&user.password, 10).map_err(|source| Error::HashPassword {
            email: user.email.clone(),
            source,
        })?;
        users.push(json!({
            "email": user.email,
            "hash": hash,
            "username": user.username,
            "userID": user.user_id,
        }));
    }
    let clients: Vec<_> = config
        .clients
        .iter()
        .map(|c| {
            let mut v = json!({ "id": c.id, "name": c.id, "redirectURIs": c.redirect_uris });
            match &c.secret {
                Some(secret) => v["secret"] = json!(secret),
                None => v["public"] = json!(true),
            }
            v
        })
        .collect();
    let doc = json!({
        "issuer": issuer,
        "storage": { "type": "memory" },
        "web": { "http": format!("127.0.0.1:{port}") },
        "logger": { "level": "info", "format": "json" },
        "oauth2": {
            "skipApprovalScreen": true,
            "passwordConnector": "local",
            "responseTypes": ["code"],
        },
        "expiry": { "deviceRequests": "5m", "idTokens": "1h" },
        "enablePasswordDB": true,
        "staticPasswords": users,
        "staticClients": clients,
    });
    serde_json::to_string_pretty(&doc).map_err(|source| Error::Json {
        what: "render Dex configuration".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_hashed_passwords_and_public_and_confidential_clients() {
        let rendered = render_config(&DexConfig::default(), "http://127.0.0.1:1/dex", 1).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(doc["issuer"], "http://127.0.0.1:1/dex");
        assert_eq!(doc["web"]["http"], "127.0.0.1:1");
        let user = &doc["staticPasswords"][0];
        assert_eq!(user["email"], "admin@example.com");
        let hash = user["hash"].as_str().unwrap();
        assert!(
            hash.starts_with("$2b$10$"),
            "Dex needs bcrypt cost >= 10: {hash}"
        );
        assert!(bcrypt::verify("password", hash).unwrap());
        assert!(
            !rendered.contains("\"password\""),
            "no clear-text password in the config"
        );
        let backend = &doc["staticClients"][0];
        assert_eq!(backend["secret"], "klutch-backend-secret");
        assert_eq!(
            backend["redirectURIs"],
            serde_json::json!(DEFAULT_BACKEND_REDIRECT_URIS),
            "absolute backend callbacks, no relative /device/callback"
        );
        for (i, id) in [(1, "klutch-backend-device"), (2, "klutch-cli")] {
            let public = &doc["staticClients"][i];
            assert_eq!(
                (public["id"].as_str(), &public["public"]),
                (Some(id), &serde_json::json!(true))
            );
            assert!(public.get("secret").is_none());
        }
        let extra = DexConfig::default()
            .with_backend_redirect_uris(&["https://bind.example.com/callback".to_owned()]);
        assert_eq!(extra.clients[0].redirect_uris.len(), 3);
        assert!(
            extra.clients[1].redirect_uris.is_empty(),
            "public clients unchanged"
        );
    }

    #[test]
    fn id_token_claims_decode_and_bad_tokens_give_errors() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"email":"a@b.c"}"#);
        let tokens = DexTokens {
            id_token: format!("h.{payload}.s"),
            access_token: String::new(),
            refresh_token: None,
            expires_in: None,
        };
        assert_eq!(tokens.id_token_claims().unwrap()["email"], "a@b.c");
        let bad = DexTokens {
            id_token: "h.!!!.s".into(),
            ..tokens.clone()
        };
        assert!(
            bad.id_token_claims()
                .unwrap_err()
                .to_string()
                .contains("not base64url")
        );
        let not_json = DexTokens {
            id_token: format!(
                "h.{}.s",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"nope")
            ),
            ..tokens
        };
        assert!(matches!(
            not_json.id_token_claims(),
            Err(Error::Json { .. })
        ));
    }
}

//! Flags (Klutch's names, with environment fallbacks) and their validation.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use klutch_sdk::api::export::{ClusterScopedIsolation, Scope};
use klutch_sdk::runtime::logging::LogFormat;

/// The reference Klutch binding backend.
#[derive(Debug, Parser)]
#[command(name = "example-backend", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    /// OIDC issuer URL (the IdP users log in at).
    #[arg(long, env = "OIDC_ISSUER_URL")]
    pub oidc_issuer_url: Option<String>,
    /// OIDC client id of this backend at the IdP.
    #[arg(long, env = "OIDC_CLIENT_ID")]
    pub oidc_issuer_client_id: Option<String>,
    /// OIDC client secret (prefer the environment variable).
    #[arg(long, env = "OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_issuer_client_secret: Option<String>,
    /// A public OIDC client (no secret) for the device flow of `kubectl bind --non-interactive`.
    /// Unset or empty: no device flow is offered (the confidential secret is never sent with a
    /// device request).
    #[arg(long, env = "OIDC_DEVICE_CLIENT_ID")]
    pub oidc_device_client_id: Option<String>,
    /// ID-token signing algorithms accepted, whatever the IdP advertises; asymmetric only
    /// (HS256/HS384/HS512 and none are refused).
    #[arg(
        long,
        env = "OIDC_ID_TOKEN_ALGS",
        value_delimiter = ',',
        default_value = "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA"
    )]
    pub oidc_id_token_algs: Vec<String>,
    /// How long a client may take to send a request's headers before the connection is closed.
    #[arg(long, env = "READ_HEADER_TIMEOUT", default_value = "10s", value_parser = klutch_sdk::runtime::duration::parse)]
    pub read_header_timeout: std::time::Duration,
    /// How long a client may take to send a request body (then 408).
    #[arg(long, env = "READ_BODY_TIMEOUT", default_value = "30s", value_parser = klutch_sdk::runtime::duration::parse)]
    pub read_body_timeout: std::time::Duration,
    /// Open connections at most; more clients wait until one closes.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Login requests (/authorize, /callback, /device/*) per minute and client address, as
    /// `<per-minute>[/<burst>]`; `0` switches the limit off.
    #[arg(long, env = "LOGIN_RATE_LIMIT", default_value = "60/30", value_parser = rate_limit)]
    pub login_rate_limit: RateLimit,
    /// This backend's /callback URL as registered at the IdP, e.g. https://bind.example.com/callback.
    #[arg(long, env = "OIDC_CALLBACK_URL")]
    pub oidc_callback_url: Option<String>,
    /// The /authorize URL advertised by /export (default: <scheme>://<Host>/authorize).
    #[arg(long, env = "OIDC_AUTHORIZE_URL")]
    pub oidc_authorize_url: Option<String>,
    /// PEM CA bundle to trust for the IdP instead of the system roots.
    #[arg(long, env = "OIDC_CA_FILE")]
    pub oidc_ca_file: Option<PathBuf>,
    /// Base64 key (32 or 64 bytes) that authenticates cookies and state. Generate one with
    /// `head -c 32 /dev/urandom | base64`. All replicas need the same key.
    #[arg(long, env = "COOKIE_SIGNING_KEY", hide_env_values = true)]
    pub cookie_signing_key: Option<String>,
    /// Optional base64 key (16, 24 or 32 bytes) mixed into the cookie encryption key.
    #[arg(long, env = "COOKIE_ENCRYPTION_KEY", hide_env_values = true)]
    pub cookie_encryption_key: Option<String>,
    /// Address to serve the bind protocol, /healthz and /metrics on.
    #[arg(long, env = "LISTEN_ADDRESS", default_value = "127.0.0.1:8080")]
    pub listen_address: SocketAddr,
    /// Deprecated: use --listen-address.
    #[arg(long, hide = true)]
    pub listen_ip: Option<std::net::IpAddr>,
    /// Deprecated: use --listen-address.
    #[arg(long, hide = true)]
    pub listen_port: Option<u16>,
    /// TLS certificate chain (PEM); serve https. Needs --tls-key-file.
    #[arg(long, env = "TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// TLS private key (PEM). Needs --tls-cert-file.
    #[arg(long, env = "TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Kubeconfig of the provider cluster (default: $KUBECONFIG, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Prefix of cluster namespaces (`<prefix>-<16 base-36 characters>`, at most 46 characters).
    /// Part of every binding-space identity: backends with different prefixes never share spaces.
    #[arg(long, env = "NAMESPACE_PREFIX", default_value = "cluster", value_parser = namespace_prefix)]
    pub namespace_prefix: String,
    /// Issuer whose users may take over binding spaces created under the old identity key
    /// `<sub>#<cid>` (by earlier klutch versions or by Klutch's Go backend, with this namespace prefix).
    /// Set it to the issuer those spaces were created with, and only if that backend had no
    /// other issuer. Unset: old spaces keep working through the kubeconfigs already issued, but a
    /// new bind creates a new space. See docs/backend.md, "Identities and binding spaces".
    #[arg(long, env = "LEGACY_IDENTITY_ISSUER", value_parser = non_empty)]
    pub legacy_identity_issuer: Option<String>,
    /// Provider name shown to consumers (/export, ClusterBindings, the catalogue).
    #[arg(long, env = "PRETTY_NAME", default_value = "Example Backend", value_parser = non_empty)]
    pub pretty_name: String,
    /// Namespaced: tenants get RoleBindings in their service namespaces only. Cluster: tenants
    /// get a ClusterRoleBinding on exported and claimed resources (cluster-wide rights), and
    /// cluster-scoped CRDs become bindable.
    #[arg(
        long,
        env = "CONSUMER_SCOPE",
        default_value = "Namespaced",
        ignore_case = true
    )]
    pub consumer_scope: ConsumerScope,
    /// Isolation of cluster-scoped objects. Only `prefixed` is implemented; the others are
    /// refused rather than silently treated as prefixed.
    #[arg(
        long,
        env = "CLUSTER_SCOPED_ISOLATION",
        default_value = "prefixed",
        ignore_case = true
    )]
    pub cluster_scoped_isolation: Isolation,
    /// API server address written into issued kubeconfigs (https://...); default: the one the
    /// backend uses.
    #[arg(long, env = "EXTERNAL_ADDRESS")]
    pub external_address: Option<String>,
    /// CA (PEM) written into issued kubeconfigs; default: the one the backend trusts.
    #[arg(long, env = "EXTERNAL_CA_FILE")]
    pub external_ca_file: Option<PathBuf>,
    /// `tls-server-name` written into issued kubeconfigs.
    #[arg(long, env = "EXTERNAL_SERVER_NAME")]
    pub external_server_name: Option<String>,
    /// Hosts besides localhost/127.0.0.1 that the CLI's redirect URL (`u`) may point to.
    #[arg(long, env = "ALLOWED_REDIRECT_HOSTS", value_delimiter = ',')]
    pub allowed_redirect_hosts: Vec<String>,
    /// Trust X-Forwarded-Proto/-Host (only behind a proxy that sets them).
    #[arg(long, env = "TRUST_FORWARDED_HEADERS")]
    pub trust_forwarded_headers: bool,
    /// Control-plane mode (AppClusterBindings). Not implemented yet; refused.
    #[arg(long, env = "CONTROL_PLANE_MODE")]
    pub control_plane_mode: bool,
    /// Namespace of the Lease `klutch-bind-backend`.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Identity in the Lease (default: $POD_NAME, else a random one).
    #[arg(long, env = "POD_NAME")]
    pub lease_identity: Option<String>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Log verbosity: 0 warn, 1 info, 2 info (default), 3 debug, 4+ trace. RUST_LOG overrides.
    #[arg(short = 'v', long = "v", env = "VERBOSITY", default_value_t = 2)]
    pub verbosity: u8,
}

const LONG_ABOUT: &str = "The reference Klutch binding backend.

It authenticates users through OIDC (authorization code with PKCE, and the device grant for CI), \
offers the provider CRDs selected by APIServiceExportTemplates, creates a binding space \
(namespace, ServiceAccount, kubeconfig) per user and consumer cluster, and reconciles export \
requests, RBAC and service namespaces under the Lease `klutch-bind-backend`, so several replicas \
can serve HTTP.

Example:
  example-backend --oidc-issuer-url https://dex.example.com --oidc-issuer-client-id klutch \\
    --oidc-callback-url https://bind.example.com/callback --external-address https://api.example.com:6443
  (with OIDC_CLIENT_SECRET and COOKIE_SIGNING_KEY in the environment)";

/// `--consumer-scope`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConsumerScope {
    /// RoleBindings in service namespaces.
    Namespaced,
    /// A ClusterRoleBinding per tenant.
    Cluster,
}

/// `--cluster-scoped-isolation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Isolation {
    /// `<clusterNs>-<name>` on the provider.
    Prefixed,
    /// Not implemented by the konnector: refused.
    Namespaced,
    /// Not implemented by the konnector: refused.
    None,
}

/// `--login-rate-limit`: a limit, or none (`0`).
#[derive(Clone, Copy, Debug)]
pub struct RateLimit(pub Option<klutch_sdk::backend::server::LoginRateLimit>);

fn rate_limit(s: &str) -> Result<RateLimit, String> {
    let (rate, burst) = s.split_once('/').unwrap_or((s, s));
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?} is not <per-minute>[/<burst>]"))
    };
    let (rate, burst) = (parse(rate)?, parse(burst)?);
    Ok(RateLimit((rate > 0).then(|| {
        klutch_sdk::backend::server::LoginRateLimit::new(rate, burst)
    })))
}

fn namespace_prefix(s: &str) -> Result<String, String> {
    let max = klutch_sdk::backend::binding_space::MAX_PREFIX_LEN;
    if s.len() > max {
        return Err(format!(
            "at most {max} characters (names are <prefix>-<16 characters>)"
        ));
    }
    non_empty(s)
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

/// A flag combination that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    /// A required flag is missing.
    #[error("{0} is required")]
    Missing(&'static str),
    /// `--external-address` is not https.
    #[error("--external-address must start with https://, got {0:?}")]
    ExternalAddress(String),
    /// An isolation mode the konnector cannot honour.
    #[error("--cluster-scoped-isolation={0:?} is not implemented (only prefixed is)")]
    Isolation(Isolation),
    /// Control-plane mode.
    #[error("--control-plane-mode (AppClusterBindings) is not implemented yet")]
    ControlPlaneMode,
    /// A bad cookie key.
    #[error(transparent)]
    Key(#[from] klutch_sdk::backend::keys::Error),
}

/// The checked OIDC settings.
pub struct Oidc {
    /// Issuer.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Callback URL.
    pub callback: String,
}

impl Cli {
    /// The listen address, honouring the deprecated aliases.
    pub fn listen(&self) -> SocketAddr {
        let mut addr = self.listen_address;
        if let Some(ip) = self.listen_ip {
            addr.set_ip(ip);
        }
        if let Some(port) = self.listen_port {
            addr.set_port(port);
        }
        addr
    }

    /// Checks what clap cannot: required OIDC flags, key sizes, addresses, isolation.
    pub fn validate(&self) -> Result<(Oidc, klutch_sdk::backend::SessionKeys), Invalid> {
        if self.control_plane_mode {
            return Err(Invalid::ControlPlaneMode);
        }
        if self.cluster_scoped_isolation != Isolation::Prefixed {
            return Err(Invalid::Isolation(self.cluster_scoped_isolation));
        }
        if let Some(addr) = &self.external_address
            && !addr.starts_with("https://")
        {
            return Err(Invalid::ExternalAddress(addr.clone()));
        }
        let need = |v: &Option<String>, flag| v.clone().ok_or(Invalid::Missing(flag));
        let oidc = Oidc {
            issuer: need(&self.oidc_issuer_url, "--oidc-issuer-url")?,
            client_id: need(&self.oidc_issuer_client_id, "--oidc-issuer-client-id")?,
            client_secret: need(
                &self.oidc_issuer_client_secret,
                "--oidc-issuer-client-secret (or OIDC_CLIENT_SECRET)",
            )?,
            callback: need(&self.oidc_callback_url, "--oidc-callback-url")?,
        };
        let signing = need(
            &self.cookie_signing_key,
            "--cookie-signing-key (or COOKIE_SIGNING_KEY)",
        )?;
        let keys = klutch_sdk::backend::SessionKeys::from_base64(
            &signing,
            self.cookie_encryption_key.as_deref(),
        )?;
        Ok((oidc, keys))
    }

    /// `--consumer-scope` as the API's scope.
    pub fn scope(&self) -> Scope {
        match self.consumer_scope {
            ConsumerScope::Namespaced => Scope::Namespaced,
            ConsumerScope::Cluster => Scope::Cluster,
        }
    }

    /// `--cluster-scoped-isolation` as the API's value.
    pub fn isolation(&self) -> ClusterScopedIsolation {
        match self.cluster_scoped_isolation {
            Isolation::Prefixed => ClusterScopedIsolation::Prefixed,
            Isolation::Namespaced => ClusterScopedIsolation::Namespaced,
            Isolation::None => ClusterScopedIsolation::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn flags_are_consistent_and_rate_limits_parse() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["example-backend"]).unwrap();
        assert_eq!(
            cli.login_rate_limit.0,
            Some(klutch_sdk::backend::server::LoginRateLimit::new(60, 30))
        );
        assert_eq!(cli.read_header_timeout, std::time::Duration::from_secs(10));
        let cli = Cli::try_parse_from(["example-backend", "--login-rate-limit", "0"]).unwrap();
        assert_eq!(cli.login_rate_limit.0, None);
        let cli = Cli::try_parse_from(["example-backend", "--login-rate-limit", "10"]).unwrap();
        assert_eq!(
            cli.login_rate_limit.0,
            Some(klutch_sdk::backend::server::LoginRateLimit::new(10, 10))
        );
        assert!(Cli::try_parse_from(["example-backend", "--login-rate-limit", "x/1"]).is_err());
    }
}

//! `example-backend`: the reference Klutch binding backend, a thin binary over
//! `klutch_sdk::backend` (OIDC + APIServiceExportTemplates). See `docs/backend.md`.

// The flags' doc comments are their --help text, written for a terminal, not for rustdoc.
#[allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]
mod cli;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use klutch_sdk::backend::controllers::run_under_lease;
use klutch_sdk::backend::{
    BindingSpaceConfig, BindingSpaces, ExternalCluster, OidcAuthenticator, OidcConfig, OidcOptions,
    Server, ServerConfig, TemplateBackend, TemplateBackendConfig,
};
use klutch_sdk::runtime::health::ServeOptions;
use klutch_sdk::runtime::{client, health, http_metrics::HttpMetrics, logging, signals, tls};

use crate::cli::Cli;

/// What stops the backend.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("invalid flags")]
    Flags(#[from] cli::Invalid),
    #[error("read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("load the provider kubeconfig")]
    Kubeconfig(#[from] client::Error),
    #[error("set up OIDC")]
    Oidc(#[from] klutch_sdk::backend::oidc::Error),
    #[error("start the template catalogue (are the klutch CRDs installed?)")]
    Catalogue(#[source] kube::Error),
    #[error("TLS")]
    Tls(#[from] tls::Error),
    #[error("HTTP server")]
    Http(#[from] health::Error),
    #[error("controllers")]
    Controllers(#[from] klutch_sdk::backend::controllers::Error),
}

fn read(path: &std::path::Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })
}

fn init_logging(cli: &Cli) -> Result<(), logging::Error> {
    let level = match cli.verbosity {
        0 => "warn",
        1 | 2 => "info",
        3 => "debug",
        _ => "trace",
    };
    logging::Logging::new(level).format(cli.log_format).init()
}

async fn run(cli: Cli) -> Result<(), Error> {
    let (oidc, keys) = cli.validate()?;
    let config = client::load_config(cli.kubeconfig.as_deref()).await?;
    let client = kube::Client::try_from(config.clone())
        .map_err(|e| Error::Kubeconfig(client::Error::Build(e)))?;
    let mut external = ExternalCluster::from_kube_config(&config);
    if let Some(addr) = &cli.external_address {
        external.server = addr.clone();
    }
    if let Some(ca) = &cli.external_ca_file {
        external.ca_pem = Some(read(ca)?);
    }
    if cli.external_server_name.is_some() {
        external.server_name = cli.external_server_name.clone();
    }
    let auth = OidcAuthenticator::discover_with(
        OidcConfig {
            issuer_url: oidc.issuer,
            client_id: oidc.client_id,
            client_secret: oidc.client_secret.into(),
            callback_url: oidc.callback.clone(),
            ca_pem: cli.oidc_ca_file.as_deref().map(read).transpose()?,
        },
        OidcOptions {
            // empty (e.g. an unset ConfigMap entry of the release bundle): no device flow
            device_client_id: cli
                .oidc_device_client_id
                .clone()
                .filter(|id| !id.is_empty()),
            id_token_algs: cli.oidc_id_token_algs.clone(),
            ..OidcOptions::default()
        },
    )
    .await?;
    let backend = TemplateBackend::start(
        client.clone(),
        auth,
        TemplateBackendConfig {
            pretty_name: cli.pretty_name.clone(),
            consumer_scope: cli.scope(),
            cluster_scoped_isolation: cli.isolation(),
        },
    )
    .await
    .map_err(Error::Catalogue)?;
    let mut spaces = BindingSpaces::new(
        client.clone(),
        BindingSpaceConfig {
            namespace_prefix: cli.namespace_prefix.clone(),
            pretty_name: cli.pretty_name.clone(),
            external,
            token_timeout: Duration::from_secs(10),
        },
    );
    if let Some(issuer) = &cli.legacy_identity_issuer {
        spaces = spaces.with_legacy_issuer(issuer);
    }
    let spaces = Arc::new(spaces);
    let mut server_config = ServerConfig::new(keys);
    server_config.version = format!("v{}", env!("CARGO_PKG_VERSION"));
    server_config.authorize_url = cli.oidc_authorize_url.clone();
    server_config.callback_url = Some(oidc.callback);
    server_config.tls = cli.tls_cert_file.is_some();
    server_config.trust_forwarded_headers = cli.trust_forwarded_headers;
    server_config.allowed_redirect_hosts = cli.allowed_redirect_hosts.clone();
    server_config.login_rate_limit = cli.login_rate_limit.0;
    let mut registry = prometheus_client::registry::Registry::with_prefix("klutch_backend");
    let metrics = HttpMetrics::register(&mut registry);
    let router = metrics.instrument(
        Server::new(backend.clone(), spaces, server_config)
            .device_redemptions_in(client.clone(), &cli.lease_namespace)
            .router()
            .merge(
                health::Endpoints::new()
                    .registry(Arc::new(registry))
                    .router(),
            ),
    );

    let identity = cli.lease_identity.clone().unwrap_or_else(|| {
        format!(
            "example-backend-{}",
            klutch_sdk::backend::state::random_token(8)
        )
    });
    let controllers = run_under_lease(client, backend, &cli.lease_namespace, &identity);

    let addr = cli.listen();
    let server = health::Server::bind(addr).await?;
    tracing::info!(%addr, tls = cli.tls_cert_file.is_some(), version = env!("CARGO_PKG_VERSION"), "serving the bind protocol");
    let options = ServeOptions {
        header_read_timeout: cli.read_header_timeout,
        body_read_timeout: cli.read_body_timeout,
        max_connections: cli.max_connections,
    };
    let serve = async {
        let tls = match (&cli.tls_cert_file, &cli.tls_key_file) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
            _ => None,
        };
        Ok(server
            .serve_with(router, options, tls, signals::shutdown())
            .await?)
    };
    tokio::select! {
        r = serve => r,
        r = controllers => r.map_err(Error::from),
    }
}

fn main() -> ExitCode {
    klutch_sdk::tls::install_crypto_provider();
    let cli = Cli::parse();
    if let Err(e) = init_logging(&cli) {
        eprintln!("example-backend: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("example-backend: start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain = klutch_sdk::runtime::report::error_chain(&e);
            tracing::error!(error = %chain, "example-backend stopped");
            eprintln!("example-backend: {chain}");
            ExitCode::from(if matches!(e, Error::Flags(_)) { 2 } else { 1 })
        }
    }
}

//! A complete Klutch binding backend with static-token authentication, built on
//! `klutch_sdk::backend`: the SDK serves the bind protocol, creates binding spaces and RBAC and
//! runs the controllers; this file only says who the users are and what they may bind.
//!
//! ```text
//! STATIC_TOKENS="s3cret=alice,t0ken=bob" cargo run -p klutch-examples --example custom_backend -- \
//!     --offer mangodbs.mangodb.com --listen-address 127.0.0.1:8080
//! kubectl bind http://127.0.0.1:8080/export      # log in with one of the tokens
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Query;
use axum::response::Html;
use clap::Parser;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::APIServiceExportSpec as Spec;
use klutch_sdk::api::convert::export_spec_from_crd;
use klutch_sdk::api::export::Scope;
use klutch_sdk::api::export_request::ExportRequestResource;
use klutch_sdk::api::naming::binding_name;
use klutch_sdk::backend::controllers::run_under_lease;
use klutch_sdk::backend::prelude::*;
use kube::Api;

/// Users log in by typing a token from `STATIC_TOKENS` (`token=user,...`).
struct StaticTokens(BTreeMap<String, String>);

type Login = Result<VerifiedIdentity, AuthError>;

impl Authenticator for StaticTokens {
    async fn start_login(&self, state: &str, _callback: &str) -> Result<LoginStart, AuthError> {
        let state: String = url::form_urlencoded::byte_serialize(state.as_bytes()).collect();
        Ok(LoginStart::redirect(format!("/login?state={state}")))
    }

    async fn finish_login(&self, code: &str, _pending: &str, _callback: &str) -> Login {
        let user = self
            .0
            .get(code)
            .ok_or(AuthError::Rejected("bad token".into()))?;
        Ok(VerifiedIdentity::new("static-tokens", user))
    }
}

/// The login page `StaticTokens` redirects to: a form posting the token to `/callback`.
async fn login_page(Query(q): Query<BTreeMap<String, String>>) -> Html<String> {
    let state = escape_html(q.get("state").map_or("", String::as_str));
    Html(format!(
        r#"<form method="post" action="/callback"><input type="hidden" name="state" value="{state}">
<input type="password" name="code" placeholder="token"><button type="submit">Log in</button></form>"#
    ))
}

/// Offers a fixed list of namespaced provider CRDs, without permission claims, to every user.
struct StaticBackend {
    auth: StaticTokens,
    client: kube::Client,
    offer: Vec<String>,
}

impl StaticBackend {
    async fn crd(&self, name: &str) -> Result<CustomResourceDefinition, ExportSpecError> {
        if !self.offer.iter().any(|o| o == name) {
            return Err(ExportSpecError::NotOffered(name.into()));
        }
        let crds = Api::<CustomResourceDefinition>::all(self.client.clone());
        let crd = crds.get_opt(name).await.map_err(ExportSpecError::Kube)?;
        crd.filter(|c| c.spec.scope == "Namespaced")
            .ok_or_else(|| ExportSpecError::CrdNotFound(name.into()))
    }
}

impl BindingBackend for StaticBackend {
    type Auth = StaticTokens;

    fn authenticator(&self) -> &StaticTokens {
        &self.auth
    }

    fn pretty_name(&self) -> &str {
        "Static Example"
    }

    async fn catalogue(&self, _who: &VerifiedIdentity) -> Result<Vec<Offering>, ExportSpecError> {
        let mut offerings = Vec::new();
        for name in &self.offer {
            if let Ok(crd) = self.crd(name).await {
                offerings.push(Offering::from_crd(&crd, Vec::new()));
            }
        }
        Ok(offerings)
    }

    async fn export_spec(
        &self,
        _ns: &str,
        r: &ExportRequestResource,
    ) -> Result<Spec, ExportSpecError> {
        let crd = binding_name(&r.group, &r.resource);
        export_spec_from_crd(&self.crd(&crd).await?, Vec::new(), Scope::Namespaced, None).map_err(
            |e| ExportSpecError::CrdInvalid {
                crd,
                message: e.to_string(),
            },
        )
    }
}

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "A Klutch binding backend with static-token login")]
pub struct Cli {
    /// `token=user` pairs, comma-separated.
    #[arg(long, env = "STATIC_TOKENS", hide_env_values = true)]
    pub tokens: String,
    /// CRDs (`<plural>.<group>`) to offer; repeatable.
    #[arg(long, required = true)]
    pub offer: Vec<String>,
    /// Where to serve the bind protocol.
    #[arg(long, env = "LISTEN_ADDRESS", default_value = "127.0.0.1:8080")]
    pub listen_address: SocketAddr,
    /// Lease namespace for the controllers.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
}

/// Serves the backend on `listener` for the cluster of `config` until an error.
pub async fn serve(
    cli: Cli,
    config: kube::Config,
    listener: tokio::net::TcpListener,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = kube::Client::try_from(config.clone())?;
    let tokens = cli.tokens.split(',').filter_map(|p| p.split_once('='));
    let tokens = tokens
        .map(|(t, u)| (t.trim().to_owned(), u.trim().to_owned()))
        .collect();
    let (auth, offer) = (StaticTokens(tokens), cli.offer);
    let client2 = client.clone();
    let backend = Arc::new(StaticBackend {
        auth,
        client: client2,
        offer,
    });
    let external = ExternalCluster::from_kube_config(&config);
    let spaces = BindingSpaceConfig::new("Static Example", external);
    let spaces = Arc::new(BindingSpaces::new(client.clone(), spaces));
    let config = ServerConfig::new(SessionKeys::generate());
    let router = Server::new(backend.clone(), spaces, config).router();
    let router = router.route("/login", axum::routing::get(login_page));
    let pod = std::env::var("POD_NAME").unwrap_or_else(|_| "custom-backend".into());
    let controllers = run_under_lease(client, backend, &cli.lease_namespace, &pod);
    tokio::select! {
        r = axum::serve(listener, router) => r?,
        r = controllers => r?,
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    klutch_sdk::tls::install_crypto_provider();
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.listen_address).await?;
    serve(cli, kube::Config::infer().await?, listener).await
}

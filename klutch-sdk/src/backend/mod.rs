//! The binding-backend SDK (cargo feature `backend`): everything a Klutch-compatible backend
//! needs except the two decisions that make one backend differ from another — and, with only
//! the feature `client`, the [`client`] side of the same protocol that `kubectl bind` uses.
//!
//! A backend implements [`BindingBackend`] (what a user may bind and how an export looks) with an
//! [`Authenticator`] (who the user is). The SDK supplies the rest:
//!
//! - [`server`]: the axum router of the bind protocol (`/export`, `/authorize`, `/callback`,
//!   `/resources`, `/bind`, `/healthz`, and the device flow's `/device/authorize` and
//!   `/device/token`), with signed, expiring state bound to the browser ([`state`]) and a signed
//!   and encrypted session cookie ([`keys`], [`session`]);
//! - [`oidc`]: an OpenID Connect [`Authenticator`] (authorization code + PKCE S256 + nonce,
//!   ID tokens verified against the issuer's keys, and the OAuth device grant);
//! - [`binding_space`]: the namespace, ClusterBinding, ServiceAccount, token and kubeconfig of
//!   one identity and consumer cluster; [`rbac`]: the provider RBAC as desired state;
//! - [`controllers`]: ClusterBinding health and RBAC, APIServiceExportRequest → APIServiceExport,
//!   export refresh from CRDs, APIServiceNamespace → service namespace, run under a Lease;
//! - [`templates`]: the reference backend, driven by APIServiceExportTemplates;
//! - [`client`]: fetching the provider document, the localhost callback and the device login,
//!   on the same wire types ([`crate::api::wire`]) the server answers with.
//!
//! Most backends need only the [`prelude`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use klutch_sdk::backend::prelude::*;
//!
//! # async fn wire<B: BindingBackend>(backend: Arc<B>, client: kube::Client, config: kube::Config)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! let spaces = BindingSpaceConfig::new("My Provider", ExternalCluster::from_kube_config(&config));
//! let spaces = Arc::new(BindingSpaces::new(client, spaces));
//! let router = Server::new(backend, spaces, ServerConfig::new(SessionKeys::generate())).router();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, router).await?;
//! # Ok(()) }
//! ```
//!
//! `examples/custom_backend.rs` in the repository is a complete backend with static-token
//! authentication built on this module; `docs/backend.md` describes the design.

#[cfg(feature = "backend")]
pub mod binding_space;
pub mod client;
#[cfg(feature = "backend")]
pub mod contract;
#[cfg(feature = "backend")]
pub mod controllers;
#[cfg(feature = "backend")]
pub mod keys;
#[cfg(feature = "backend")]
pub mod oidc;
#[cfg(feature = "backend")]
pub mod rbac;
#[cfg(feature = "backend")]
pub mod server;
#[cfg(feature = "backend")]
pub mod session;
#[cfg(feature = "backend")]
pub mod state;
#[cfg(feature = "backend")]
pub mod templates;

#[cfg(feature = "backend")]
pub use binding_space::{
    BindingIdentity, BindingSpace, BindingSpaceConfig, BindingSpaces, ExternalCluster,
};
#[cfg(feature = "backend")]
pub use contract::{
    AuthError, Authenticator, BindingBackend, DeviceAuthorization, DevicePoll, ExportSpecError,
    LoginStart, Offering, VerifiedIdentity,
};
#[cfg(feature = "backend")]
pub use keys::SessionKeys;
#[cfg(feature = "backend")]
pub use oidc::{OidcAuthenticator, OidcConfig, OidcOptions};
#[cfg(feature = "backend")]
pub use server::{Server, ServerConfig};
#[cfg(feature = "backend")]
pub use templates::{TemplateBackend, TemplateBackendConfig};

/// What a backend author needs in scope: the two traits and their types, the server, binding
/// spaces, session keys, and the OIDC authenticator.
#[cfg(feature = "backend")]
pub mod prelude {
    pub use super::binding_space::{
        BindingIdentity, BindingSpace, BindingSpaceConfig, BindingSpaces, ExternalCluster,
    };
    pub use super::contract::{
        AuthError, Authenticator, BindingBackend, DeviceAuthorization, DevicePoll, ExportSpecError,
        LoginStart, Offering, VerifiedIdentity,
    };
    pub use super::keys::SessionKeys;
    pub use super::oidc::{OidcAuthenticator, OidcConfig, OidcOptions};
    pub use super::server::{Server, ServerConfig, escape_html};
}

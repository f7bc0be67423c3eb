//! The binding-backend SDK (cargo feature `backend`): everything a Klutch-compatible backend
//! needs except the two decisions that make one backend differ from another.
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
//! - [`templates`]: the reference backend, driven by APIServiceExportTemplates.
//!
//! `examples/custom_backend.rs` in the repository is a complete backend with static-token
//! authentication built on this module; `docs/backend.md` describes the design.

pub mod binding_space;
pub mod contract;
pub mod controllers;
pub mod device;
pub mod keys;
pub mod oidc;
pub mod rbac;
pub mod resources_page;
pub mod server;
pub mod session;
pub mod state;
pub mod templates;

pub use binding_space::{BindingSpace, BindingSpaceConfig, BindingSpaces, ExternalCluster};
pub use contract::{
    AuthError, Authenticator, BindingBackend, DeviceAuthorization, DevicePoll, ExportSpecError,
    LoginStart, Offering, VerifiedIdentity,
};
pub use keys::SessionKeys;
pub use oidc::{OidcAuthenticator, OidcConfig};
pub use server::{Server, ServerConfig};
pub use templates::{TemplateBackend, TemplateBackendConfig};

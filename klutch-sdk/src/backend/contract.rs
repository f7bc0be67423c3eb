//! The contract between the SDK and a backend: [`BindingBackend`] decides what a user may bind and
//! how an export looks, its [`Authenticator`] decides who the user is.
//!
//! Both traits use `impl Future + Send` return types, so implementations simply write `async fn`.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::api::APIServiceExportSpec;
use crate::api::PermissionClaim;
use crate::api::export::Scope;
use crate::api::export_request::ExportRequestResource;
use crate::api::wire::CatalogueEntry;
use crate::sync::naming;

use super::binding_space::{BindingIdentity, BindingSpace};

/// Who logged in, after the authenticator verified it (for OIDC: a verified ID token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedIdentity {
    /// The issuer (`iss`), e.g. the IdP's URL.
    pub issuer: String,
    /// The subject (`sub`), stable per user at that issuer.
    pub subject: String,
}

impl VerifiedIdentity {
    /// An identity verified by the caller.
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        VerifiedIdentity {
            issuer: issuer.into(),
            subject: subject.into(),
        }
    }

    /// The binding-space identity of this user on consumer cluster `cid`: issuer, subject and
    /// `cid` (Klutch used `<sub>#<cid>` alone, which mixes up users of different issuers).
    pub fn binding_identity(&self, cid: &str) -> BindingIdentity {
        BindingIdentity::new(&self.issuer, &self.subject, cid)
    }

    /// `<iss>/<sub>`, the informational `id` of a BindingResponse.
    pub fn display_id(&self) -> String {
        format!("{}/{}", self.issuer.trim_end_matches('/'), self.subject)
    }
}

/// Why an authentication step failed. The server answers each with a 4xx (or 502 for an
/// unreachable IdP) and creates nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The IdP or the user refused: a bad code, a replayed code, a wrong static token.
    #[error("login rejected: {0}")]
    Rejected(String),
    /// The ID token failed verification (signature, issuer, audience, expiry or nonce).
    #[error("ID token rejected")]
    InvalidToken(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The authenticator has no device flow.
    #[error("this backend does not support the device authorization grant")]
    Unsupported,
    /// The IdP could not be reached or answered nonsense.
    #[error("identity provider: {what}")]
    Provider {
        /// The step, e.g. `exchange the authorization code`.
        what: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Where `/authorize` sends the browser, and what must come back with it.
#[derive(Clone, Debug)]
pub struct LoginStart {
    /// The redirect target (e.g. the IdP's authorization URL carrying `state`).
    pub location: String,
    /// A secret the authenticator needs at `/callback` (e.g. PKCE verifier and nonce). The SDK
    /// keeps it in a sealed, short-lived cookie bound to this browser and hands it back.
    pub pending: String,
}

impl LoginStart {
    /// A redirect to `location` with no pending secret.
    pub fn redirect(location: impl Into<String>) -> Self {
        LoginStart {
            location: location.into(),
            pending: String::new(),
        }
    }
}

/// A started device authorization (RFC 8628 §3.2), as the IdP answered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorization {
    /// The IdP's device code (the SDK seals it before it leaves the backend).
    pub device_code: String,
    /// The code the user types.
    pub user_code: String,
    /// Where the user types it.
    pub verification_uri: String,
    /// `verification_uri` with the code filled in, if the IdP offers it.
    pub verification_uri_complete: Option<String>,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Polling interval in seconds.
    pub interval: u64,
}

/// One poll of a device authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevicePoll {
    /// The user has not finished yet.
    Pending,
    /// Poll more slowly.
    SlowDown,
    /// The user refused.
    Denied,
    /// The device code expired.
    Expired,
    /// Logged in.
    Done(VerifiedIdentity),
}

/// Who the user is. The SDK ships [`super::OidcAuthenticator`]; a backend can plug in anything
/// else (a static token, an enterprise SSO) by implementing this trait.
///
/// The browser flow: `/authorize` calls [`start_login`](Self::start_login) with the SDK's signed
/// `state` and redirects to [`LoginStart::location`]; whatever is there must eventually send the
/// browser to `/callback` with that `state` and a `code` (GET query or POST form), and the SDK
/// calls [`finish_login`](Self::finish_login) with the code and the pending secret.
pub trait Authenticator: Send + Sync + 'static {
    /// Starts a browser login. `callback_url` is the backend's `/callback`.
    fn start_login(
        &self,
        state: &str,
        callback_url: &str,
    ) -> impl Future<Output = Result<LoginStart, AuthError>> + Send;

    /// Finishes a browser login: turns `code` into a verified identity.
    fn finish_login(
        &self,
        code: &str,
        pending: &str,
        callback_url: &str,
    ) -> impl Future<Output = Result<VerifiedIdentity, AuthError>> + Send;

    /// Whether [`start_device`](Self::start_device) is implemented (advertised in `/export`).
    fn supports_device_flow(&self) -> bool {
        false
    }

    /// Starts a device authorization at the IdP.
    fn start_device(&self) -> impl Future<Output = Result<DeviceAuthorization, AuthError>> + Send {
        async { Err(AuthError::Unsupported) }
    }

    /// Polls a device authorization once.
    fn poll_device(
        &self,
        device_code: &str,
    ) -> impl Future<Output = Result<DevicePoll, AuthError>> + Send {
        let _ = device_code;
        async { Err(AuthError::Unsupported) }
    }
}

/// One bindable API as the catalogue shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offering {
    /// The API group.
    pub group: String,
    /// The plural resource name.
    pub resource: String,
    /// The served versions.
    pub versions: Vec<String>,
    /// The CRD's scope.
    pub scope: Scope,
    /// Display name (the reference backend: the CRD's singular name).
    pub name: String,
    /// The permission claims that come with it.
    #[serde(skip)]
    pub claims: Vec<PermissionClaim>,
}

impl Offering {
    /// The offering of a provider CRD with `claims`: served versions, scope, and the singular
    /// name (else the lower-cased kind) as display name.
    pub fn from_crd(
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        claims: Vec<PermissionClaim>,
    ) -> Self {
        let names = &crd.spec.names;
        Offering {
            group: crd.spec.group.clone(),
            resource: names.plural.clone(),
            versions: crd
                .spec
                .versions
                .iter()
                .filter(|v| v.served)
                .map(|v| v.name.clone())
                .collect(),
            scope: if crd.spec.scope == "Cluster" {
                Scope::Cluster
            } else {
                Scope::Namespaced
            },
            name: names
                .singular
                .clone()
                .unwrap_or_else(|| names.kind.to_lowercase()),
            claims,
        }
    }

    /// `<plural>.<group>` ([`naming::binding_name`](crate::api::naming::binding_name)): the
    /// name of the CRD, the export and the binding.
    pub fn export_name(&self) -> String {
        crate::api::naming::binding_name(&self.group, &self.resource)
    }

    /// This offering as the JSON catalogue of `/resources` shows it (without the claims).
    pub fn catalogue_entry(&self) -> CatalogueEntry {
        CatalogueEntry {
            group: self.group.clone(),
            resource: self.resource.clone(),
            versions: self.versions.clone(),
            scope: self.scope,
            name: self.name.clone(),
        }
    }
}

/// Why no export can be built for a requested resource.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportSpecError {
    /// The CRD does not exist (yet); the request stays `Pending` and is retried for a minute.
    #[error("CustomResourceDefinition {0} not found")]
    CrdNotFound(String),
    /// The CRD cannot be exported (e.g. a version without schema); retried like `CrdNotFound`.
    #[error("CustomResourceDefinition {crd} cannot be exported: {message}")]
    CrdInvalid {
        /// The CRD.
        crd: String,
        /// Why.
        message: String,
    },
    /// The backend does not offer this resource: the request fails at once (terminal).
    #[error("{0} is not offered by this backend")]
    NotOffered(String),
    /// Reading the provider cluster failed; retried.
    #[error("read the provider cluster")]
    Kube(#[source] kube::Error),
}

/// What differs between backends (spec §4.2). The SDK owns routing, codecs, cookie and state
/// crypto, binding spaces, RBAC and the controllers.
pub trait BindingBackend: Send + Sync + 'static {
    /// The authenticator.
    type Auth: Authenticator;

    /// Who the user is.
    fn authenticator(&self) -> &Self::Auth;

    /// The provider's display name (`providerPrettyName` of `/export` and ClusterBindings).
    fn pretty_name(&self) -> &str;

    /// The APIs `who` may bind, sorted as the catalogue shows them.
    fn catalogue(
        &self,
        who: &VerifiedIdentity,
    ) -> impl Future<Output = Result<Vec<Offering>, ExportSpecError>> + Send;

    /// Whether `who` may bind `offering` (default: everyone who can log in may bind everything
    /// in the catalogue, as upstream).
    fn authorise(
        &self,
        who: &VerifiedIdentity,
        offering: &Offering,
    ) -> impl Future<Output = bool> + Send {
        let _ = (who, offering);
        async { true }
    }

    /// Called after a binding space was ensured, before the kubeconfig is handed out (default:
    /// nothing). An error aborts the bind with 500.
    fn binding_space_ready(
        &self,
        who: &VerifiedIdentity,
        space: &BindingSpace,
    ) -> impl Future<Output = Result<(), ExportSpecError>> + Send {
        let _ = (who, space);
        async { Ok(()) }
    }

    /// The APIServiceExport spec for a requested resource in cluster namespace `cluster_ns`:
    /// the CRD copy, informer scope, isolation and claims (from the backend's own policy, never
    /// from the request).
    fn export_spec(
        &self,
        cluster_ns: &str,
        resource: &ExportRequestResource,
    ) -> impl Future<Output = Result<APIServiceExportSpec, ExportSpecError>> + Send;

    /// The provider namespace that serves consumer namespace `consumer_ns` of `cluster_ns`
    /// (default: `<clusterNs>-<consumerNs>` with the 63-character rule).
    fn service_namespace(&self, cluster_ns: &str, consumer_ns: &str) -> String {
        naming::service_namespace(cluster_ns, consumer_ns)
    }

    /// Whether tenants get cluster-wide rights on their exported and claimed resources
    /// (`--consumer-scope=Cluster`) instead of RoleBindings in their service namespaces.
    fn cluster_scoped_consumers(&self) -> bool {
        false
    }
}

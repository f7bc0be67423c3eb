//! `ServiceBinding`: credentials for a data service instance claim in the same namespace.
//!
//! On the a9s composition (`a9s-servicebinding`) provider-anynines writes the credentials to
//! the Secret `<binding claim name>-creds` in the claim's namespace ([`creds_secret_name`]);
//! on the a8s composition (`a8s-servicebinding`, the default, PostgreSQL only) the a8s
//! operator writes a Secret whose name appears in `status.managed.secret.name`.

use kube::core::Rule;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::rules::composition;
use super::xrd::ClaimDefinition;
use super::{ClaimStatus, CompositionRef, ServiceInstanceType, string_enum};

/// The a9s composition.
pub const A9S_COMPOSITION: &str = "a9s-servicebinding";
/// The a8s composition (the default; PostgreSQL only).
pub const A8S_COMPOSITION: &str = "a8s-servicebinding";

string_enum! {
    /// Accepted for compatibility with Klutch v1.5; no composition uses it.
    Region {
        EuCentral1 = "eu-central-1",
        UsEast1 = "us-east-1",
    }
}

/// The rule shared by the a8s compositions of ServiceBinding, Backup and Restore: they only
/// serve PostgreSQL. An empty composition name counts as the default, as in Klutch.
pub(crate) fn a8s_postgresql_only(a8s_composition: &str) -> Rule {
    let comp = composition(a8s_composition);
    Rule::new(format!(
        "!({comp} == '' || {comp} == '{a8s_composition}') || self.serviceInstanceType == 'postgresql'"
    ))
    .message("Selected service instance type is not supported.")
}

/// The spec of a [`ServiceBinding`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "ServiceBinding",
    plural = "servicebindings",
    namespaced,
    status = "ClaimStatus",
    doc = "Credentials for a data service instance claim in the same namespace."
)]
#[x_kube(validation = a8s_postgresql_only(A8S_COMPOSITION))]
#[serde(rename_all = "camelCase")]
pub struct ServiceBindingSpec {
    /// The name of the instance claim (e.g. a `PostgresqlInstance`) in this namespace.
    pub instance_ref: String,
    /// The kind of the instance.
    pub service_instance_type: ServiceInstanceType,
    /// Whether the broker may bind asynchronously (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_incomplete: Option<bool>,
    /// Accepted for compatibility with Klutch v1.5; unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// Accepted for compatibility with Klutch v1.5; unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// `a8s-servicebinding` (default) or `a9s-servicebinding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl ServiceBindingSpec {
    /// A binding of the instance claim `instance_ref` of kind `service_instance_type` on the
    /// default composition.
    pub fn new(
        instance_ref: impl Into<String>,
        service_instance_type: ServiceInstanceType,
    ) -> Self {
        ServiceBindingSpec {
            instance_ref: instance_ref.into(),
            service_instance_type,
            accepts_incomplete: None,
            region: None,
            policy: None,
            composition_ref: None,
        }
    }

    /// The same spec on the a9s composition.
    pub fn a9s(mut self) -> Self {
        self.composition_ref = Some(CompositionRef::new(A9S_COMPOSITION));
        self
    }
}

/// The Secret an a9s binding claim called `binding_name` gets its credentials in (same
/// namespace as the claim).
pub fn creds_secret_name(binding_name: &str) -> String {
    format!("{binding_name}-creds")
}

impl ServiceBinding {
    /// The a9s composition.
    pub const A9S_COMPOSITION: &'static str = A9S_COMPOSITION;
    /// The a8s composition (the default).
    pub const A8S_COMPOSITION: &'static str = A8S_COMPOSITION;
}

impl ClaimDefinition for ServiceBinding {
    const COMPOSITE_KIND: &'static str = "XServiceBinding";
    const COMPOSITE_PLURAL: &'static str = "xservicebindings";
    const DEFAULT_COMPOSITION: &'static str = A8S_COMPOSITION;
    const FOREGROUND_DELETE: bool = false;
}

//! Crossplane's well-known labels, annotations and finalizers, verbatim, and helpers to read
//! them.

use std::collections::BTreeMap;

/// The external resource's id.
pub const EXTERNAL_NAME: &str = "crossplane.io/external-name";
/// Set (RFC 3339) right before a Create call.
pub const EXTERNAL_CREATE_PENDING: &str = "crossplane.io/external-create-pending";
/// Set (RFC 3339) after a successful Create call.
pub const EXTERNAL_CREATE_SUCCEEDED: &str = "crossplane.io/external-create-succeeded";
/// Set (RFC 3339) after a failed Create call.
pub const EXTERNAL_CREATE_FAILED: &str = "crossplane.io/external-create-failed";
/// `"true"` pauses reconciliation.
pub const PAUSED: &str = "crossplane.io/paused";
/// The finalizer on managed resources.
pub const FINALIZER: &str = "finalizer.managedresource.crossplane.io";
/// The finalizer on ProviderConfigs that are in use.
pub const IN_USE_FINALIZER: &str = "in-use.crossplane.io";
/// Label on ProviderConfigUsages: the ProviderConfig's name.
pub const PROVIDER_CONFIG_LABEL: &str = "crossplane.io/provider-config";
/// Label set by compositions: the claim's name.
pub const CLAIM_NAME_LABEL: &str = "crossplane.io/claim-name";
/// Label set by compositions: the claim's namespace.
pub const CLAIM_NAMESPACE_LABEL: &str = "crossplane.io/claim-namespace";
/// The Secret type of connection secrets.
pub const CONNECTION_SECRET_TYPE: &str = "connection.crossplane.io/v1alpha1";

/// The annotations the reconciler itself writes (and therefore applies on every metadata
/// write); a provider adds its own with
/// [`Settings::owned_annotation`](super::Settings::owned_annotation).
pub const OWNED_ANNOTATIONS: [&str; 4] = [
    EXTERNAL_NAME,
    EXTERNAL_CREATE_PENDING,
    EXTERNAL_CREATE_SUCCEEDED,
    EXTERNAL_CREATE_FAILED,
];

/// An annotation's value, if set and not empty.
///
/// ```
/// use std::collections::BTreeMap;
/// use klutch_sdk::crossplane::meta::{EXTERNAL_NAME, annotation};
/// let a = Some(BTreeMap::from([(EXTERNAL_NAME.to_owned(), "b-1".to_owned())]));
/// assert_eq!(annotation(&a, EXTERNAL_NAME), Some("b-1"));
/// assert_eq!(annotation(&None, EXTERNAL_NAME), None);
/// ```
pub fn annotation<'a>(
    annotations: &'a Option<BTreeMap<String, String>>,
    key: &str,
) -> Option<&'a str> {
    annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// A label's value, if set and not empty.
pub fn label<'a>(labels: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    annotation(labels, key)
}

/// Now as an RFC 3339 string with whole seconds (as crossplane-runtime writes).
pub fn now_rfc3339() -> String {
    use k8s_openapi::jiff::{Timestamp, Unit};
    Timestamp::now()
        .round(Unit::Second)
        .unwrap_or_else(|_| Timestamp::now())
        .to_string()
}

//! OSB API versions 2.11 to 2.17 and the features each one gates (spec 4).

use std::fmt;
use std::str::FromStr;

/// An OSB API version the client can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum ApiVersion {
    /// 2.11: plan-level `bindable`.
    V2_11,
    /// 2.12: `context` on provision and update.
    V2_12,
    /// 2.13: plan `schemas`, `context` on bind, originating identity.
    V2_13,
    /// 2.14: fetch instance/binding, async bind/unbind, binding last_operation.
    V2_14,
    /// 2.15: `Retry-After`, `maintenance_info`, request identity, `maximum_polling_duration`.
    V2_15,
    /// 2.16: fetch hints, conditional catalog, `instance_usable`/`update_repeatable`.
    V2_16,
    /// 2.17: binding rotation, instance `metadata.attributes`.
    #[default]
    V2_17,
}

impl ApiVersion {
    /// All supported versions, oldest first.
    pub const ALL: [ApiVersion; 7] = [
        ApiVersion::V2_11,
        ApiVersion::V2_12,
        ApiVersion::V2_13,
        ApiVersion::V2_14,
        ApiVersion::V2_15,
        ApiVersion::V2_16,
        ApiVersion::V2_17,
    ];

    /// The newest supported version.
    pub const LATEST: ApiVersion = ApiVersion::V2_17;

    /// The header value, e.g. `"2.17"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2_11 => "2.11",
            ApiVersion::V2_12 => "2.12",
            ApiVersion::V2_13 => "2.13",
            ApiVersion::V2_14 => "2.14",
            ApiVersion::V2_15 => "2.15",
            ApiVersion::V2_16 => "2.16",
            ApiVersion::V2_17 => "2.17",
        }
    }

    /// True when this version has `feature`.
    pub fn supports(self, feature: Feature) -> bool {
        self >= feature.since()
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiVersion {
    type Err = UnknownVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| UnknownVersion {
                value: s.to_owned(),
            })
    }
}

/// A version string that is none of the supported versions (the error of parsing an
/// [`ApiVersion`]). Converts into [`crate::Error::Config`] with `?`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported OSB API version {value:?} (supported: 2.11 to 2.17)")]
pub struct UnknownVersion {
    /// The string that was given.
    pub value: String,
}

/// A version-gated feature (spec 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// `context` in provision and update bodies (silently omitted below).
    ContextOnInstance,
    /// `context` in bind bodies and the originating identity header (silently omitted below).
    ContextOnBindAndOriginatingIdentity,
    /// Fetch instance (error below).
    FetchInstance,
    /// Fetch binding (error below).
    FetchBinding,
    /// `accepts_incomplete` on bind and unbind (error below).
    AsyncBinding,
    /// Binding last_operation (error below).
    BindingLastOperation,
    /// `maintenance_info` in requests (silently omitted below).
    MaintenanceInfo,
    /// The `X-Broker-API-Request-Identity` header (silently omitted below).
    RequestIdentity,
    /// `service_id`/`plan_id` hints on fetch (silently omitted below).
    FetchHints,
    /// Binding rotation (error below).
    BindingRotation,
    /// Conditional catalog requests with `If-None-Match` / `If-Modified-Since` (omitted below).
    ConditionalCatalog,
}

impl Feature {
    /// The first version with this feature.
    pub fn since(self) -> ApiVersion {
        match self {
            Feature::ContextOnInstance => ApiVersion::V2_12,
            Feature::ContextOnBindAndOriginatingIdentity => ApiVersion::V2_13,
            Feature::FetchInstance
            | Feature::FetchBinding
            | Feature::AsyncBinding
            | Feature::BindingLastOperation => ApiVersion::V2_14,
            Feature::MaintenanceInfo | Feature::RequestIdentity => ApiVersion::V2_15,
            Feature::FetchHints | Feature::ConditionalCatalog => ApiVersion::V2_16,
            Feature::BindingRotation => ApiVersion::V2_17,
        }
    }

    /// A short human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Feature::ContextOnInstance => "context on provision/update",
            Feature::ContextOnBindAndOriginatingIdentity => {
                "context on bind / originating identity"
            }
            Feature::FetchInstance => "fetching a service instance",
            Feature::FetchBinding => "fetching a service binding",
            Feature::AsyncBinding => "asynchronous bind/unbind",
            Feature::BindingLastOperation => "binding last_operation",
            Feature::MaintenanceInfo => "maintenance_info",
            Feature::RequestIdentity => "request identity header",
            Feature::FetchHints => "service_id/plan_id hints on fetch",
            Feature::BindingRotation => "binding rotation",
            Feature::ConditionalCatalog => "conditional catalog requests",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        assert_eq!("2.14".parse::<ApiVersion>().unwrap(), ApiVersion::V2_14);
        assert!("2.10".parse::<ApiVersion>().is_err());
        assert!("3.0".parse::<ApiVersion>().is_err());
        assert!(ApiVersion::V2_13 < ApiVersion::V2_17);
        assert_eq!(ApiVersion::default(), ApiVersion::LATEST);
    }
}

//! Client-side gates: what stops a request before it is sent, because the catalog forbids it
//! (spec 3.1) or the configured API version lacks the feature (spec 4.2).
//!
//! The versions and their features are data in [`crate::version`]; this module turns "not
//! supported" into a [`Gate`] error ([`ApiVersion::require`]).

use crate::version::{ApiVersion, Feature};

/// A client-side gate that stopped a request before sending (spec 3.1, 4.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Gate {
    /// The plan (or, when the plan does not say, the service) is not bindable.
    #[error("the plan is not bindable")]
    NotBindable,
    /// A plan change was requested but the plan/service is not `plan_updateable`.
    #[error("the plan cannot be changed (plan_updateable is false)")]
    PlanNotUpdateable,
    /// A context-only update was requested but the service lacks `allow_context_updates`.
    #[error("context-only updates are not allowed by the service")]
    ContextUpdatesNotAllowed,
    /// The service does not declare `instances_retrievable` / `bindings_retrievable`.
    #[error("the service does not allow fetching this resource")]
    NotRetrievable,
    /// The plan does not declare `binding_rotatable`.
    #[error("the plan does not allow binding rotation")]
    NotRotatable,
    /// The configured API version is older than the feature needs.
    #[error("{feature} needs OSB API version {needed} or later (configured: {configured})")]
    UnsupportedByVersion {
        /// The feature that was asked for.
        feature: &'static str,
        /// The minimum version.
        needed: ApiVersion,
        /// The configured version.
        configured: ApiVersion,
    },
}

impl ApiVersion {
    /// `Ok` when this version has `feature`, else [`Gate::UnsupportedByVersion`].
    pub fn require(self, feature: Feature) -> Result<(), Gate> {
        if self.supports(feature) {
            Ok(())
        } else {
            Err(Gate::UnsupportedByVersion {
                feature: feature.name(),
                needed: feature.since(),
                configured: self,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_follow_the_table() {
        assert!(ApiVersion::V2_13.require(Feature::FetchInstance).is_err());
        assert!(ApiVersion::V2_14.require(Feature::FetchInstance).is_ok());
        assert!(ApiVersion::V2_16.require(Feature::BindingRotation).is_err());
        assert_eq!(
            ApiVersion::V2_16.require(Feature::BindingRotation),
            Err(Gate::UnsupportedByVersion {
                feature: "binding rotation",
                needed: ApiVersion::V2_17,
                configured: ApiVersion::V2_16
            })
        );
        assert!(!ApiVersion::V2_14.supports(Feature::MaintenanceInfo));
        assert!(ApiVersion::V2_12.supports(Feature::ContextOnInstance));
        assert!(!ApiVersion::V2_11.supports(Feature::ContextOnInstance));
    }
}

//! Management policies (`spec.managementPolicies`) and `deletionPolicy`, with the supported
//! combinations of crossplane-runtime v1.20.

use std::collections::BTreeSet;

use super::api::{DeletionPolicy, ManagementAction, ResourceSpec};

use ManagementAction::{All, Create, Delete, LateInitialize, Observe, Update};

/// The effective policies of one managed resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policies {
    actions: BTreeSet<ManagementAction>,
    deletion: DeletionPolicy,
}

/// Why the policies cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A non-default value while `--enable-management-policies` is off.
    #[error(
        "`spec.managementPolicies` is set to a non-default value but the feature is not enabled: {0}"
    )]
    FeatureDisabled(String),
    /// A combination crossplane-runtime does not support.
    #[error("unsupported management policy: {0}")]
    Unsupported(String),
}

fn supported() -> Vec<BTreeSet<ManagementAction>> {
    [
        &[All][..],
        &[Observe, Create, Update, Delete, LateInitialize],
        &[Observe],
        &[],
        &[Observe, Create, Update, Delete],
        &[Observe, Create, Update, LateInitialize],
        &[Observe, Create, Update],
        &[Observe, Create, Delete, LateInitialize],
        &[Observe, Create, LateInitialize],
        &[Observe, Create, Delete],
        &[Observe, Create],
        &[Observe, Delete],
        &[Observe, Update],
    ]
    .iter()
    .map(|s| s.iter().copied().collect())
    .collect()
}

fn describe(actions: &BTreeSet<ManagementAction>) -> String {
    let v: Vec<String> = actions
        .iter()
        .map(|a| {
            serde_json::to_value(a)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();
    format!("[{}]", v.join(", "))
}

impl Policies {
    /// Validates the policies of `spec`; `feature_enabled` is the provider's
    /// `--enable-management-policies`.
    ///
    /// ```
    /// use klutch_sdk::crossplane::api::{ManagementAction, ResourceSpec};
    /// use klutch_sdk::crossplane::policies::Policies;
    /// let mut spec = ResourceSpec::default();
    /// assert!(Policies::resolve(&spec, false).unwrap().should_create());
    /// spec.management_policies = vec![ManagementAction::Observe];
    /// assert!(Policies::resolve(&spec, false).is_err());
    /// assert!(Policies::resolve(&spec, true).unwrap().only_observe());
    /// ```
    pub fn resolve(spec: &ResourceSpec, feature_enabled: bool) -> Result<Self, PolicyError> {
        let actions: BTreeSet<ManagementAction> =
            spec.management_policies.iter().copied().collect();
        let default: BTreeSet<ManagementAction> = [All].into_iter().collect();
        if actions != default {
            if !feature_enabled {
                return Err(PolicyError::FeatureDisabled(describe(&actions)));
            }
            if !supported().contains(&actions) {
                return Err(PolicyError::Unsupported(describe(&actions)));
            }
        }
        Ok(Policies {
            actions,
            deletion: spec.deletion_policy,
        })
    }

    fn has(&self, a: ManagementAction) -> bool {
        self.actions.contains(&a) || self.actions.contains(&All)
    }

    /// No action at all (an empty list): like the paused annotation.
    pub fn paused(&self) -> bool {
        self.actions.is_empty()
    }

    /// Create is allowed.
    pub fn should_create(&self) -> bool {
        self.has(Create)
    }

    /// Update is allowed.
    pub fn should_update(&self) -> bool {
        self.has(Update)
    }

    /// Only `Observe`.
    pub fn only_observe(&self) -> bool {
        self.actions.len() == 1 && self.actions.contains(&Observe)
    }

    /// Delete the external resource when the managed resource is deleted: with the default
    /// policies `deletionPolicy` decides; custom policies decide alone (crossplane-runtime).
    pub fn should_delete(&self) -> bool {
        if self.actions.contains(&All) {
            self.deletion != DeletionPolicy::Orphan
        } else {
            self.actions.contains(&Delete)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(actions: &[ManagementAction], deletion: DeletionPolicy) -> ResourceSpec {
        ResourceSpec {
            management_policies: actions.to_vec(),
            deletion_policy: deletion,
            ..ResourceSpec::default()
        }
    }

    #[test]
    fn deletion_rules() {
        let p = |a: &[ManagementAction], d| Policies::resolve(&spec(a, d), true).unwrap();
        assert!(p(&[All], DeletionPolicy::Delete).should_delete());
        assert!(!p(&[All], DeletionPolicy::Orphan).should_delete());
        assert!(!p(&[Observe], DeletionPolicy::Delete).should_delete());
        assert!(p(&[Observe, Delete], DeletionPolicy::Orphan).should_delete());
        assert!(!p(&[Observe, Create, Update], DeletionPolicy::Delete).should_delete());
        assert!(p(&[], DeletionPolicy::Delete).paused());
    }

    #[test]
    fn unsupported_combinations_are_named() {
        let e = Policies::resolve(&spec(&[Create], DeletionPolicy::Delete), true).unwrap_err();
        assert_eq!(e.to_string(), "unsupported management policy: [Create]");
        let e = Policies::resolve(&spec(&[Observe], DeletionPolicy::Delete), false).unwrap_err();
        assert!(
            e.to_string().contains("feature is not enabled: [Observe]"),
            "{e}"
        );
        assert_eq!(supported().len(), 13);
    }
}

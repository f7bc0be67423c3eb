//! The binding-name rule: one bound resource gives its name to the provider's CRD, the
//! APIServiceExportRequest, the APIServiceExport, the consumer's APIServiceBinding and CRD, and
//! the `--resource` / `--accept-claims` arguments of `kubectl bind`.
//!
//! The name is `<resource>.<group>` (the Kubernetes CRD name), or the bare `<resource>` in the
//! core group.
//!
//! ```
//! use klutch_sdk::api::GroupResource;
//! use klutch_sdk::api::naming::{binding_name, split_binding_name};
//!
//! assert_eq!(binding_name("mangodb.com", "mangodbs"), "mangodbs.mangodb.com");
//! assert_eq!(binding_name("", "secrets"), "secrets");
//! assert_eq!(
//!     split_binding_name("mangodbs.mangodb.com"),
//!     GroupResource { group: "mangodb.com".into(), resource: "mangodbs".into() }
//! );
//! ```

use super::claims::GroupResource;

/// `<resource>.<group>`, or `<resource>` when `group` is the core group (empty).
pub fn binding_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

/// The binding name of a [`GroupResource`] (see [`binding_name`]).
pub fn group_resource_name(gr: &GroupResource) -> String {
    binding_name(&gr.group, &gr.resource)
}

/// The inverse of [`binding_name`]: everything after the first `.` is the group; a name without
/// a dot is a resource of the core group.
pub fn split_binding_name(name: &str) -> GroupResource {
    match name.split_once('.') {
        Some((resource, group)) => GroupResource {
            group: group.to_owned(),
            resource: resource.to_owned(),
        },
        None => GroupResource {
            group: String::new(),
            resource: name.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_and_outside_the_core_group() {
        for (group, resource, name) in [
            ("", "secrets", "secrets"),
            ("mangodb.com", "mangodbs", "mangodbs.mangodb.com"),
            (
                "anynines.com",
                "postgresqlinstances",
                "postgresqlinstances.anynines.com",
            ),
        ] {
            assert_eq!(binding_name(group, resource), name);
            let gr = split_binding_name(name);
            assert_eq!((gr.group.as_str(), gr.resource.as_str()), (group, resource));
            assert_eq!(group_resource_name(&gr), name);
        }
    }
}

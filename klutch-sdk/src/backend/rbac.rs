//! Provider RBAC (spec §4.4) as desired state.
//!
//! - ClusterRole `klutch-binder`: what every tenant may do in its own cluster namespace (bound
//!   there by RoleBinding `klutch-binder`).
//! - ClusterRole `klutch-binder-<clusterNs>` (owned by the cluster Namespace): the exported
//!   resources and their claimed resources, bound by RoleBinding `klutch-binder` in each service
//!   namespace (`Namespaced` consumer scope), or by ClusterRoleBinding `klutch-binder-<clusterNs>`
//!   (`Cluster` consumer scope).
//!
//! In `Namespaced` scope the reconciler never creates a ClusterRoleBinding; it only deletes a
//! stale one (Klutch's create/delete flapping, spec §7 item 8, is not copied).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::{Resource as _, ResourceExt as _};

use crate::api::APIServiceExport;
use crate::api::wellknown::{BINDER_NAME, GROUP};

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(groups.iter().map(|s| (*s).to_owned()).collect()),
        resources: Some(resources.iter().map(|s| (*s).to_owned()).collect()),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

/// The static ClusterRole `klutch-binder`.
pub fn binder_cluster_role() -> ClusterRole {
    const READ: [&str; 3] = ["get", "list", "watch"];
    const STATUS: [&str; 3] = ["get", "patch", "update"];
    const ALL: [&str; 7] = [
        "create", "delete", "patch", "update", "get", "list", "watch",
    ];
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(BINDER_NAME.into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![
            rule(&[GROUP], &["apiserviceexportrequests"], &ALL),
            rule(&[""], &["namespaces"], &["get"]),
            rule(&[""], &["secrets"], &READ),
            rule(&[GROUP], &["clusterbindings"], &READ),
            rule(&[GROUP], &["clusterbindings/status"], &STATUS),
            rule(&[GROUP], &["apiserviceexports"], &READ),
            rule(&[GROUP], &["apiserviceexports/status"], &STATUS),
            rule(&[GROUP], &["apiservicenamespaces"], &ALL),
        ]),
        ..ClusterRole::default()
    }
}

/// The subject of a cluster namespace's tenant.
pub fn binder_subject(cluster_ns: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: BINDER_NAME.into(),
        namespace: Some(cluster_ns.into()),
        api_group: None,
    }
}

/// RoleBinding `klutch-binder` (in the cluster namespace or a service namespace) of the tenant
/// of `cluster_ns` to ClusterRole `role`.
pub fn binder_role_binding(cluster_ns: &str, role: &str) -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(BINDER_NAME.into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(vec![binder_subject(cluster_ns)]),
    }
}

/// `klutch-binder-<clusterNs>`.
pub fn tenant_role_name(cluster_ns: &str) -> String {
    format!("{BINDER_NAME}-{cluster_ns}")
}

fn owned_by(ns: &Namespace) -> Option<Vec<OwnerReference>> {
    Some(vec![OwnerReference {
        api_version: Namespace::api_version(&()).into_owned(),
        kind: Namespace::kind(&()).into_owned(),
        name: ns.name_any(),
        uid: ns.uid()?,
        controller: Some(true),
        block_owner_deletion: None,
    }])
}

/// ClusterRole `klutch-binder-<clusterNs>`: one rule per exported resource and per claimed
/// resource, de-duplicated by group and resource, all verbs a konnector needs.
pub fn tenant_cluster_role(cluster_ns: &Namespace, exports: &[APIServiceExport]) -> ClusterRole {
    const VERBS: [&str; 7] = [
        "get", "list", "watch", "update", "patch", "delete", "create",
    ];
    let mut pairs = BTreeSet::new();
    for export in exports {
        pairs.insert((export.spec.group.clone(), export.spec.names.plural.clone()));
        for claim in &export.spec.permission_claims {
            pairs.insert((
                claim.group_resource.group.clone(),
                claim.group_resource.resource.clone(),
            ));
        }
    }
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(tenant_role_name(&cluster_ns.name_any())),
            owner_references: owned_by(cluster_ns),
            ..ObjectMeta::default()
        },
        rules: Some(
            pairs
                .iter()
                .map(|(g, r)| rule(&[g.as_str()], &[r.as_str()], &VERBS))
                .collect(),
        ),
        ..ClusterRole::default()
    }
}

/// ClusterRoleBinding `klutch-binder-<clusterNs>` (only for `Cluster` consumer scope).
pub fn tenant_cluster_role_binding(cluster_ns: &Namespace) -> ClusterRoleBinding {
    let name = tenant_role_name(&cluster_ns.name_any());
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            owner_references: owned_by(cluster_ns),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name,
        },
        subjects: Some(vec![binder_subject(&cluster_ns.name_any())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_role_matches_the_spec() {
        let role = binder_cluster_role();
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), 8);
        assert!(rules.iter().all(|r| !r.verbs.contains(&"*".to_string())));
        let secrets = rules
            .iter()
            .find(|r| r.resources.as_deref() == Some(&["secrets".to_string()][..]))
            .unwrap();
        assert_eq!(secrets.verbs, ["get", "list", "watch"]);
    }
}

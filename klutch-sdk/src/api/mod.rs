//! The `klutch.anynines.com/v1alpha1` API (and the example backend's template kind), wire
//! compatible with Klutch v1.5: the same group, kinds, JSON field names, defaults, enums, CEL
//! rules, printer columns and short names, so Go and Rust components can share clusters.
//!
//! [`crds`] returns every CRD, generated from these types; `deploy/crd/` holds the committed
//! YAML (`cargo run -p klutch-sdk --example crdgen` rewrites it, and a test fails when it is
//! stale).

pub mod app_cluster_binding;
pub mod binding;
pub mod claims;
pub mod cluster_binding;
pub mod conditions;
pub mod convert;
pub mod export;
pub mod export_request;
pub mod ids;
pub mod namespace;
pub mod naming;
pub mod template;
pub mod wellknown;
pub mod wire;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt as _;

pub use app_cluster_binding::{AppClusterBinding, AppClusterBindingSpec, AppClusterBindingStatus};
pub use binding::{APIServiceBinding, APIServiceBindingSpec, APIServiceBindingStatus};
pub use claims::{
    AcceptablePermissionClaim, ClaimOwner, ClaimState, ClusterSecretKeyRef, GroupResource,
    LocalSecretKeyRef, PermissionClaim, ResourceSelector,
};
pub use cluster_binding::{ClusterBinding, ClusterBindingSpec, ClusterBindingStatus};
pub use conditions::{Condition, ConditionStatus, Severity};
pub use export::{APIServiceExport, APIServiceExportSpec, APIServiceExportStatus};
pub use export_request::{
    APIServiceExportRequest, APIServiceExportRequestSpec, APIServiceExportRequestStatus,
};
pub use namespace::{APIServiceNamespace, APIServiceNamespaceSpec, APIServiceNamespaceStatus};
pub use template::{APIServiceExportTemplate, APIServiceExportTemplateSpec};

/// Every CRD of the bind API, the example backend's template CRD last.
///
/// ```
/// let names: Vec<String> = klutch_sdk::api::crds().into_iter().filter_map(|c| c.metadata.name).collect();
/// assert!(names.contains(&"apiservicebindings.klutch.anynines.com".to_string()));
/// ```
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        klutch_compatible(APIServiceBinding::crd()),
        klutch_compatible(APIServiceExport::crd()),
        klutch_compatible(APIServiceExportRequest::crd()),
        klutch_compatible(APIServiceNamespace::crd()),
        klutch_compatible(AppClusterBinding::crd()),
        klutch_compatible(ClusterBinding::crd()),
        klutch_compatible(APIServiceExportTemplate::crd()),
    ]
}

/// The few schema details the derive macros cannot express, adjusted to what Klutch v1.5's CRDs
/// say, so that every manifest Klutch accepts is accepted here too:
///
/// - (Klutch's `spec` is optional on APIServiceBinding and APIServiceNamespace; ours is required,
///   as the types require it and Go components always write it: a stored object without one
///   would stall every list of its kind, issue #19);
/// - an APIServiceExportRequest's `status` defaults to `{}` (so `phase` defaults to `Pending`);
/// - a permission claim's `required` has no default (absent means false);
/// - the Kubernetes container types inside AppClusterBinding overrides keep the defaults of the
///   Kubernetes version Klutch generated them from: optional `name` (default `""`) on config map
///   and secret references, `protocol: TCP` on ports and `service: ""` on gRPC probes.
fn klutch_compatible(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    use serde_json::{Value, json};

    fn walk(schema: &mut Value, name: &str) {
        let Some(obj) = schema.as_object_mut() else {
            return;
        };
        match name {
            "configMapRef" | "secretRef" | "configMapKeyRef" | "secretKeyRef" => {
                if let Some(required) = obj.get_mut("required").and_then(Value::as_array_mut) {
                    required.retain(|r| r != "name");
                    if required.is_empty() {
                        obj.remove("required");
                    }
                }
                if let Some(name) = obj.get_mut("properties").and_then(|p| p.get_mut("name")) {
                    name["default"] = json!("");
                }
            }
            "ports" => {
                if let Some(protocol) = obj
                    .get_mut("items")
                    .and_then(|i| i.get_mut("properties"))
                    .and_then(|p| p.get_mut("protocol"))
                {
                    protocol["default"] = json!("TCP");
                }
            }
            "grpc" => {
                if let Some(service) = obj.get_mut("properties").and_then(|p| p.get_mut("service"))
                {
                    service["default"] = json!("");
                }
            }
            "required" if obj.get("type") == Some(&json!("boolean")) => {
                obj.remove("default");
            }
            _ => {}
        }
        if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
            for (key, sub) in props.iter_mut() {
                walk(sub, key);
            }
        }
        if let Some(items) = obj.get_mut("items") {
            walk(items, "");
        }
        if let Some(additional) = obj.get_mut("additionalProperties") {
            walk(additional, "");
        }
    }

    let kind = crd.spec.names.kind.clone();
    let mut value = serde_json::to_value(&crd).expect("a CRD serialises");
    for version in value["spec"]["versions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let root = &mut version["schema"]["openAPIV3Schema"];
        walk(root, "");
        if kind == "APIServiceExportRequest" {
            root["properties"]["status"]["default"] = json!({});
        }
    }
    serde_json::from_value(value).expect("the adjusted CRD is still a CRD")
}

/// Every CRD as `(file name, YAML)`, the file named `<group>_<plural>.yaml` as in Klutch. This is
/// what `deploy/crd/` holds.
pub fn crd_files() -> Result<Vec<(String, String)>, serde_saphyr::ser_error::Error> {
    crds()
        .into_iter()
        .map(|crd| {
            let file = format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural);
            let yaml = serde_saphyr::to_string(&crd)?;
            Ok((file, format!("# Generated from klutch_sdk::api by `cargo run -p klutch-sdk --example crdgen`. Do not edit.\n{yaml}")))
        })
        .collect()
}

//! The `dataservices.anynines.com/v1` API, wire compatible with Klutch v1.5's
//! provider-anynines: the same kinds, JSON names, enums, defaults, printer columns and
//! categories. [`crds`] generates every CRD from these types; `bins/provider-anynines/package/crds/`
//! holds the committed YAML (`cargo run -p provider-anynines --example package` rewrites it,
//! and a test fails when it is stale). The fields every managed resource shares come from
//! [`klutch_sdk::crossplane::api`] and are re-exported here.

pub mod backup;
pub mod binding;
pub mod common;
pub mod instance;
pub mod provider_config;
pub mod restore;
pub mod store_config;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt as _;
use kube::api::ApiResource;

pub use backup::{Backup, BackupObservation, BackupParameters, BackupSpec, BackupStatus};
pub use binding::{
    ConnectionDetails, ServiceBinding, ServiceBindingObservation, ServiceBindingParameters,
    ServiceBindingSpec, ServiceBindingStatus,
};
pub use common::OriginatingIdentity;
pub use instance::{
    ServiceInstance, ServiceInstanceObservation, ServiceInstanceParameters, ServiceInstanceSpec,
    ServiceInstanceStatus,
};
pub use klutch_sdk::crossplane::api::{
    Condition, DeletionPolicy, ManagementAction, ProviderConfigUsage, Reference, ResourceSpec,
    SecretKeySelector, SecretReference, TypedReference,
};
pub use provider_config::{
    CredentialsSource, ProviderConfig, ProviderConfigSpec, ProviderConfigStatus, ServiceType,
};
pub use restore::{Restore, RestoreObservation, RestoreParameters, RestoreSpec, RestoreStatus};
pub use store_config::StoreConfig;

klutch_sdk::impl_managed!(ServiceInstance, ServiceInstanceStatus);
klutch_sdk::impl_managed!(ServiceBinding, ServiceBindingStatus);
klutch_sdk::impl_managed!(Backup, BackupStatus);
klutch_sdk::impl_managed!(Restore, RestoreStatus);

/// The API group.
pub const GROUP: &str = "dataservices.anynines.com";
/// The only version.
pub const VERSION: &str = "v1";
/// `GROUP/VERSION`.
pub const API_VERSION: &str = "dataservices.anynines.com/v1";

/// The provider's ProviderConfigUsage kind (`Api::<ProviderConfigUsage>::all_with(client, &usage())`).
pub fn usage() -> ApiResource {
    ProviderConfigUsage::api_resource(GROUP, VERSION)
}

/// Every CRD of the provider package, ordered by file name.
///
/// ```
/// let names: Vec<String> = klutch_a9s::provider::api::crds().into_iter().filter_map(|c| c.metadata.name).collect();
/// assert!(names.contains(&"serviceinstances.dataservices.anynines.com".to_string()));
/// ```
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        Backup::crd(),
        ProviderConfig::crd(),
        ProviderConfigUsage::crd(GROUP, VERSION, &["anynines"]),
        Restore::crd(),
        ServiceBinding::crd(),
        ServiceInstance::crd(),
        StoreConfig::crd(),
    ]
    .into_iter()
    .map(compatible)
    .collect()
}

/// Details the derive cannot express, adjusted to Klutch v1.5: an explicit `listKind`, and
/// `acceptsIncomplete` of a ServiceInstance is required *and* defaults to true (the apiserver
/// fills it in).
fn compatible(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let kind = crd.spec.names.kind.clone();
    let mut v = serde_json::to_value(crd).expect("a CRD serialises");
    v["spec"]["names"]["listKind"] = format!("{kind}List").into();
    if kind == "ServiceInstance" {
        for version in v["spec"]["versions"].as_array_mut().into_iter().flatten() {
            let fp = &mut version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                ["forProvider"];
            if let Some(req) = fp["required"].as_array_mut()
                && !req.iter().any(|r| r == "acceptsIncomplete")
            {
                req.push("acceptsIncomplete".into());
                req.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    serde_json::from_value(v).expect("the adjusted CRD is still a CRD")
}

/// Every CRD as `(file name, YAML)`, named `<group>_<plural>.yaml` like Klutch's
/// `package/crds/`.
pub fn crd_files() -> Result<Vec<(String, String)>, serde_saphyr::ser_error::Error> {
    crds()
        .into_iter()
        .map(|crd| {
            let file = format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural);
            let yaml = serde_saphyr::to_string(&crd)?;
            // The header names the module's old path: kept so the committed files stay
            // byte-identical.
            Ok((
                file,
                format!(
                    "# Generated from provider_anynines::api by `cargo run -p provider-anynines --example package`. Do not edit.\n{yaml}"
                ),
            ))
        })
        .collect()
}

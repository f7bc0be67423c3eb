//! `ProviderConfigUsage`: records that a managed resource uses a ProviderConfig. Unlike the
//! other kinds it has no `spec`: `providerConfigRef` and `resourceRef` sit at the top level,
//! so the type implements [`kube::Resource`] by hand and its CRD is derived from a helper type
//! ([`ProviderConfigUsage::crd`]).
//!
//! Every provider serves the kind in its own API group, so the type is dynamic: its
//! [`kube::Resource::DynamicType`] is the [`ApiResource`] of
//! [`ProviderConfigUsage::api_resource`].
//!
//! ```
//! use klutch_sdk::crossplane::api::ProviderConfigUsage;
//! let ar = ProviderConfigUsage::api_resource("buckets.example.org", "v1alpha1");
//! assert_eq!(ar.api_version, "buckets.example.org/v1alpha1");
//! let crd = ProviderConfigUsage::crd("buckets.example.org", "v1alpha1", &["bucket"]);
//! assert_eq!(crd.metadata.name.as_deref(), Some("providerconfigusages.buckets.example.org"));
//! ```

use std::borrow::Cow;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, ObjectMeta};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Reference;

/// The kind's name.
pub const KIND: &str = "ProviderConfigUsage";
/// The kind's plural.
pub const PLURAL: &str = "providerconfigusages";

/// A typed reference to the managed resource using a ProviderConfig.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypedReference {
    /// API version of the referent.
    pub api_version: String,
    /// Kind of the referent.
    pub kind: String,
    /// Name of the referent.
    pub name: String,
    /// UID of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// A ProviderConfigUsage records one managed resource's use of a ProviderConfig.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigUsage {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// The ProviderConfig in use.
    pub provider_config_ref: Reference,
    /// The managed resource using it.
    pub resource_ref: TypedReference,
}

impl ProviderConfigUsage {
    /// The kind in API group `group`, version `version` (pass it to `Api::all_with`).
    pub fn api_resource(group: &str, version: &str) -> ApiResource {
        ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: format!("{group}/{version}"),
            kind: KIND.to_owned(),
            plural: PLURAL.to_owned(),
        }
    }

    /// The kind's CRD in `group`/`version`, in the categories `crossplane`, `provider` and
    /// `extra_categories`: the derived `spec` properties lifted to the top level.
    pub fn crd(group: &str, version: &str, extra_categories: &[&str]) -> CustomResourceDefinition {
        use kube::CustomResourceExt as _;
        let mut v =
            serde_json::to_value(shape::ProviderConfigUsage::crd()).expect("a CRD serialises");
        v["metadata"]["name"] = format!("{PLURAL}.{group}").into();
        v["spec"]["group"] = group.into();
        if let Some(categories) = v["spec"]["names"]["categories"].as_array_mut() {
            categories.extend(extra_categories.iter().map(|c| (*c).into()));
        }
        for ver in v["spec"]["versions"].as_array_mut().into_iter().flatten() {
            ver["name"] = version.into();
            let root = &mut ver["schema"]["openAPIV3Schema"];
            let spec = root["properties"]["spec"].take();
            let props = root["properties"].as_object_mut().expect("properties");
            props.remove("spec");
            if let Some(fields) = spec["properties"].as_object() {
                for (k, s) in fields {
                    props.insert(k.clone(), s.clone());
                }
            }
            root["required"] = spec["required"].clone();
            if let Some(o) = root.as_object_mut() {
                o.remove("title");
            }
            ver["subresources"] = serde_json::json!({});
        }
        serde_json::from_value(v).expect("still a CRD")
    }
}

impl kube::Resource for ProviderConfigUsage {
    type DynamicType = ApiResource;
    type Scope = kube::core::ClusterResourceScope;

    fn kind(ar: &ApiResource) -> Cow<'_, str> {
        ar.kind.as_str().into()
    }
    fn group(ar: &ApiResource) -> Cow<'_, str> {
        ar.group.as_str().into()
    }
    fn version(ar: &ApiResource) -> Cow<'_, str> {
        ar.version.as_str().into()
    }
    fn api_version(ar: &ApiResource) -> Cow<'_, str> {
        ar.api_version.as_str().into()
    }
    fn plural(ar: &ApiResource) -> Cow<'_, str> {
        ar.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

mod shape {
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use super::super::common::Reference;
    use super::TypedReference;

    /// The top-level fields of a ProviderConfigUsage, as a `spec` for the CRD derive (the
    /// group is a placeholder that [`super::ProviderConfigUsage::crd`] replaces).
    #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "placeholder.invalid",
        version = "v1",
        kind = "ProviderConfigUsage",
        category = "crossplane",
        category = "provider",
        printcolumn = r#"{"jsonPath":".metadata.creationTimestamp","name":"AGE","type":"date"}"#,
        printcolumn = r#"{"jsonPath":".providerConfigRef.name","name":"CONFIG-NAME","type":"string"}"#,
        printcolumn = r#"{"jsonPath":".resourceRef.kind","name":"RESOURCE-KIND","type":"string"}"#,
        printcolumn = r#"{"jsonPath":".resourceRef.name","name":"RESOURCE-NAME","type":"string"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct Fields {
        /// The ProviderConfig in use.
        pub provider_config_ref: Reference,
        /// The managed resource using it.
        pub resource_ref: TypedReference,
    }
}

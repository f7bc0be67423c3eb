//! `ProviderConfigUsage`: records that a managed resource uses a ProviderConfig. Unlike the
//! other kinds it has no `spec`: `providerConfigRef` and `resourceRef` sit at the top level,
//! so the type implements [`kube::Resource`] by hand and its CRD is derived from a helper type
//! ([`crd`]).

use std::borrow::Cow;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Reference;

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

impl kube::Resource for ProviderConfigUsage {
    type DynamicType = ();
    type Scope = kube::core::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ProviderConfigUsage".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        super::GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        super::VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "providerconfigusages".into()
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

    use super::TypedReference;
    use crate::api::common::Reference;

    /// The top-level fields of a ProviderConfigUsage, as a `spec` for the CRD derive.
    #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "dataservices.anynines.com",
        version = "v1",
        kind = "ProviderConfigUsage",
        category = "crossplane",
        category = "provider",
        category = "anynines",
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

/// The ProviderConfigUsage CRD: the derived `spec` properties lifted to the top level.
pub fn crd() -> CustomResourceDefinition {
    use kube::CustomResourceExt as _;
    let mut v = serde_json::to_value(shape::ProviderConfigUsage::crd()).expect("a CRD serialises");
    for version in v["spec"]["versions"].as_array_mut().into_iter().flatten() {
        let root = &mut version["schema"]["openAPIV3Schema"];
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
        version["subresources"] = serde_json::json!({});
    }
    serde_json::from_value(v).expect("still a CRD")
}

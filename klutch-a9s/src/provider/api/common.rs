//! Schema pieces the a9s kinds share: arbitrary `parameters` maps and the OSB originating
//! identity.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A map of arbitrary JSON values (`parameters`).
pub(crate) fn any_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true}
    })
}

/// `forProvider.originatingIdentity`: the user on whose behalf calls are made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OriginatingIdentity {
    /// The platform of the user (e.g. `kubernetes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// A serialized JSON object describing the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

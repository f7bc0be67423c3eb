//! Context objects (OSB profile): typed builders for Cloud Foundry and Kubernetes, or any JSON
//! object with a `platform`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `context` of a provision, update or bind request (spec 9.4).
///
/// ```
/// use klutch_osb::Context;
/// let ctx = Context::kubernetes("team-a", "cluster-1").with("instance_name", "db");
/// assert_eq!(ctx.platform(), Some("kubernetes"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Context(pub Map<String, Value>);

impl Context {
    /// A Cloud Foundry context (`organization_guid`, `organization_name`, `space_guid`,
    /// `space_name`).
    pub fn cloudfoundry(
        organization_guid: impl Into<String>,
        organization_name: impl Into<String>,
        space_guid: impl Into<String>,
        space_name: impl Into<String>,
    ) -> Self {
        Context::raw("cloudfoundry")
            .with("organization_guid", organization_guid.into())
            .with("organization_name", organization_name.into())
            .with("space_guid", space_guid.into())
            .with("space_name", space_name.into())
    }

    /// A Kubernetes context (`namespace`, `clusterid`).
    pub fn kubernetes(namespace: impl Into<String>, clusterid: impl Into<String>) -> Self {
        Context::raw("kubernetes")
            .with("namespace", namespace.into())
            .with("clusterid", clusterid.into())
    }

    /// A context with only a `platform`.
    pub fn raw(platform: impl Into<String>) -> Self {
        let mut m = Map::new();
        m.insert("platform".into(), Value::String(platform.into()));
        Context(m)
    }

    /// Adds or replaces a property (e.g. `instance_name`, `instance_annotations`).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The `platform` property.
    pub fn platform(&self) -> Option<&str> {
        self.0.get("platform").and_then(Value::as_str)
    }

    /// A string property.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// The organization and space GUIDs a provision request must carry (spec 9.2), synthesised
    /// from this context: Cloud Foundry `organization_guid`/`space_guid`; Kubernetes
    /// `clusterid` as `organization_guid` and `namespace` as `space_guid` (the mapping
    /// Kubernetes platforms such as the Service Catalog used). Used by
    /// [`crate::ProvisionRequest::effective_guids`] when the request sets no GUIDs.
    ///
    /// ```
    /// use klutch_osb::Context;
    /// let k = Context::kubernetes("team-a", "cluster-1");
    /// assert_eq!(k.guids(), Some(("cluster-1".into(), "team-a".into())));
    /// ```
    pub fn guids(&self) -> Option<(String, String)> {
        let pick = |a: &str, b: &str| {
            Some((self.get_str(a)?.to_owned(), self.get_str(b)?.to_owned()))
                .filter(|(x, y)| !x.is_empty() && !y.is_empty())
        };
        pick("organization_guid", "space_guid").or_else(|| pick("clusterid", "namespace"))
    }
}

//! Shared test fixtures: the provider CRD the bind tests export (Klutch's e2e `MangoDB`, or any
//! other `<plural>.<group>`), built in the variants the tests need — scope, versions, a status
//! subresource, printer columns, typed spec fields with a default or a maximum.
//!
//! ```
//! use klutch_sdk::testenv::fixtures::TestCrd;
//!
//! let crd = TestCrd::mangodb().status_subresource().tier().build();
//! assert_eq!(crd.metadata.name.as_deref(), Some("mangodbs.mangodb.com"));
//! assert_eq!(crd.spec.versions[0].name, "v1alpha1");
//!
//! let gizmos = TestCrd::new("example.com", "gizmos", "Gizmo")
//!     .cluster_scoped()
//!     .version("v1")
//!     .spec_integer("size", Some(10))
//!     .build();
//! assert_eq!(gizmos.spec.scope, "Cluster");
//! ```

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Map, Value, json};

/// A CRD `<plural>.<group>` for tests (see the [module documentation](self)). By default:
/// namespaced, one served storage version `v1alpha1` whose schema is `{type: object}` (the
/// apiserver prunes every field), no subresources.
#[derive(Clone, Debug)]
#[must_use]
pub struct TestCrd {
    group: String,
    plural: String,
    kind: String,
    scope: String,
    version: String,
    other_versions: Vec<(String, bool)>,
    short_names: Vec<String>,
    status_subresource: bool,
    printer_columns: Vec<Value>,
    spec: Map<String, Value>,
    open_status: bool,
    preserve_unknown_fields: bool,
}

impl TestCrd {
    /// A namespaced CRD `<plural>.<group>` of kind `kind` (singular: the kind in lower case).
    pub fn new(group: &str, plural: &str, kind: &str) -> Self {
        TestCrd {
            group: group.into(),
            plural: plural.into(),
            kind: kind.into(),
            scope: "Namespaced".into(),
            version: "v1alpha1".into(),
            other_versions: Vec::new(),
            short_names: Vec::new(),
            status_subresource: false,
            printer_columns: Vec::new(),
            spec: Map::new(),
            open_status: false,
            preserve_unknown_fields: false,
        }
    }

    /// Klutch's e2e API: `mangodbs.mangodb.com`, kind `MangoDB`.
    pub fn mangodb() -> Self {
        Self::new("mangodb.com", "mangodbs", "MangoDB")
    }

    /// Cluster-scoped instead of namespaced.
    pub fn cluster_scoped(self) -> Self {
        self.scope("Cluster")
    }

    /// The scope as a CRD spells it (`Namespaced` or `Cluster`; anything else for tests of
    /// invalid CRDs).
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.into();
        self
    }

    /// The name of the served storage version (default `v1alpha1`).
    pub fn version(mut self, name: &str) -> Self {
        self.version = name.into();
        self
    }

    /// Adds a version after the storage version, served or not, with the schema `{type: object}`.
    pub fn other_version(mut self, name: &str, served: bool) -> Self {
        self.other_versions.push((name.into(), served));
        self
    }

    /// Adds a short name.
    pub fn short_name(mut self, name: &str) -> Self {
        self.short_names.push(name.into());
        self
    }

    /// Gives the storage version a status subresource.
    pub fn status_subresource(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// Adds a printer column to the storage version.
    pub fn printer_column(mut self, name: &str, type_: &str, json_path: &str) -> Self {
        self.printer_columns
            .push(json!({ "name": name, "type": type_, "jsonPath": json_path }));
        self
    }

    /// Adds `spec.<name>` with this OpenAPI schema.
    pub fn spec_property(mut self, name: &str, schema: Value) -> Self {
        self.spec.insert(name.into(), schema);
        self
    }

    /// Adds `spec.<name>` as an integer, at most `maximum` when given.
    pub fn spec_integer(self, name: &str, maximum: Option<i64>) -> Self {
        let mut schema = json!({ "type": "integer" });
        if let Some(max) = maximum {
            schema["maximum"] = json!(max);
        }
        self.spec_property(name, schema)
    }

    /// Adds the MangoDB `spec.tier`: `Dedicated` or `Shared`, default `Shared`.
    pub fn tier(self) -> Self {
        self.spec_property(
            "tier",
            json!({ "type": "string", "enum": ["Dedicated", "Shared"], "default": "Shared" }),
        )
    }

    /// Adds a `status` object that keeps every field.
    pub fn open_status(mut self) -> Self {
        self.open_status = true;
        self
    }

    /// Makes the whole object schemaless (`x-kubernetes-preserve-unknown-fields`) instead of
    /// typed.
    pub fn preserve_unknown_fields(mut self) -> Self {
        self.preserve_unknown_fields = true;
        self
    }

    fn schema(&self) -> Value {
        if self.preserve_unknown_fields {
            return json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true });
        }
        let mut properties = Map::new();
        if !self.spec.is_empty() {
            properties.insert(
                "spec".into(),
                json!({ "type": "object", "properties": self.spec }),
            );
        }
        if self.open_status {
            properties.insert(
                "status".into(),
                json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true }),
            );
        }
        let mut schema = json!({ "type": "object" });
        if !properties.is_empty() {
            schema["properties"] = Value::Object(properties);
        }
        schema
    }

    /// The CRD.
    pub fn build(self) -> CustomResourceDefinition {
        let mut storage = json!({
            "name": self.version, "served": true, "storage": true,
            "schema": { "openAPIV3Schema": self.schema() },
        });
        if self.status_subresource {
            storage["subresources"] = json!({ "status": {} });
        }
        if !self.printer_columns.is_empty() {
            storage["additionalPrinterColumns"] = Value::Array(self.printer_columns.clone());
        }
        let mut versions = vec![storage];
        versions.extend(self.other_versions.iter().map(|(name, served)| {
            json!({ "name": name, "served": served, "storage": false,
                    "schema": { "openAPIV3Schema": { "type": "object" } } })
        }));
        let mut names = json!({
            "kind": self.kind, "listKind": format!("{}List", self.kind),
            "plural": self.plural, "singular": self.kind.to_lowercase(),
        });
        if !self.short_names.is_empty() {
            names["shortNames"] = json!(self.short_names);
        }
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": { "name": crate::api::naming::binding_name(&self.group, &self.plural) },
            "spec": {
                "group": self.group, "scope": self.scope, "names": names, "versions": versions,
            }
        }))
        .expect("a test CRD is a CRD")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_builds_what_the_tests_used_to_write_by_hand() {
        let plain = TestCrd::mangodb().build();
        assert_eq!(plain.spec.scope, "Namespaced");
        assert_eq!(plain.spec.names.list_kind.as_deref(), Some("MangoDBList"));
        assert_eq!(plain.spec.names.singular.as_deref(), Some("mangodb"));
        let v = &plain.spec.versions[0];
        assert!(v.served && v.storage && v.subresources.is_none());
        assert_eq!(
            serde_json::to_value(&v.schema).unwrap(),
            json!({ "openAPIV3Schema": { "type": "object" } })
        );

        let full = TestCrd::mangodb()
            .short_name("mdb")
            .status_subresource()
            .printer_column("Tier", "string", ".spec.tier")
            .tier()
            .other_version("v1beta1", false)
            .build();
        assert_eq!(full.spec.names.short_names, Some(vec!["mdb".to_string()]));
        assert_eq!(full.spec.versions.len(), 2);
        assert!(!full.spec.versions[1].served && !full.spec.versions[1].storage);
        let schema = serde_json::to_value(&full.spec.versions[0].schema).unwrap();
        assert_eq!(
            schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["tier"]["default"],
            "Shared"
        );
        assert_eq!(
            full.spec.versions[0]
                .additional_printer_columns
                .as_ref()
                .unwrap()[0]
                .json_path,
            ".spec.tier"
        );

        let sized = TestCrd::new("example.com", "gizmos", "Gizmo")
            .cluster_scoped()
            .version("v1")
            .status_subresource()
            .spec_integer("size", Some(3))
            .open_status()
            .build();
        assert_eq!(sized.metadata.name.as_deref(), Some("gizmos.example.com"));
        let schema = serde_json::to_value(&sized.spec.versions[0].schema).unwrap();
        let props = &schema["openAPIV3Schema"]["properties"];
        assert_eq!(props["spec"]["properties"]["size"]["maximum"], 3.0);
        assert_eq!(
            props["status"]["x-kubernetes-preserve-unknown-fields"],
            true
        );

        let open = TestCrd::mangodb().preserve_unknown_fields().build();
        let schema = serde_json::to_value(&open.spec.versions[0].schema).unwrap();
        assert_eq!(
            schema["openAPIV3Schema"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert_eq!(
            TestCrd::mangodb().scope("Galactic").build().spec.scope,
            "Galactic"
        );
    }
}

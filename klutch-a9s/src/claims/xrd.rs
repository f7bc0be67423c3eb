//! CompositeResourceDefinitions (XRDs) generated from the claim types, and the claim CRD
//! Crossplane 1.20 derives from an XRD.
//!
//! The XRD's schema is the claim type's schema (as `kube` derives it, CEL rules included)
//! without the fields Crossplane adds itself (`compositionRef` & co. in `spec`, conditions in
//! `status`). [`claim_crd`] performs Crossplane's own derivation (`xcrd.ForCompositeResourceClaim`
//! of Crossplane v1.20), so tests can install exactly the CRD Crossplane would serve without
//! running Crossplane.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Map, Value, json};

use super::{Error, GROUP, Result, VERSION};

/// What the package needs to know about a claim kind beyond its CRD.
pub trait ClaimDefinition: CustomResourceExt {
    /// The composite resource's kind, e.g. `XPostgresqlInstance`.
    const COMPOSITE_KIND: &'static str;
    /// The composite resource's plural, e.g. `xpostgresqlinstances`.
    const COMPOSITE_PLURAL: &'static str;
    /// The composition Crossplane selects when the claim names none.
    const DEFAULT_COMPOSITION: &'static str;
    /// Whether deleting a claim waits for its composed resources (`Foreground`), as Klutch does
    /// for data service instances.
    const FOREGROUND_DELETE: bool;
}

/// The spec fields Crossplane adds to every claim (`CompositeResourceClaimSpecProps`).
pub const CLAIM_SPEC_FIELDS: [&str; 8] = [
    "compositionRef",
    "compositionSelector",
    "compositionRevisionRef",
    "compositionRevisionSelector",
    "compositionUpdatePolicy",
    "compositeDeletePolicy",
    "resourceRef",
    "publishConnectionDetailsTo",
];

/// The XRD of claim kind `K`, as a `apiextensions.crossplane.io/v1` object.
pub fn xrd<K: ClaimDefinition>() -> Result<Value> {
    let crd = K::crd();
    let kind = crd.spec.names.kind.clone();
    let version = crd.spec.versions.first().ok_or_else(|| Error::Schema {
        kind: kind.clone(),
        path: "spec.versions[0]",
    })?;
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .ok_or_else(|| Error::Schema {
            kind: kind.clone(),
            path: "spec.versions[0].schema.openAPIV3Schema",
        })?;
    let mut schema = serde_json::to_value(schema).expect("a JSON schema serialises");
    tidy(&mut schema);
    let mut spec = schema["properties"]["spec"].clone();
    let spec_props = spec["properties"]
        .as_object_mut()
        .ok_or_else(|| Error::Schema {
            kind: kind.clone(),
            path: "spec.properties",
        })?;
    spec_props.remove("writeConnectionSecretToRef");
    for field in CLAIM_SPEC_FIELDS {
        spec_props.remove(field);
    }
    let managed = schema["properties"]["status"]["properties"]["managed"].clone();
    let mut open_api = Map::new();
    open_api.insert("type".into(), json!("object"));
    if let Some(description) = schema.get("description") {
        open_api.insert("description".into(), description.clone());
    }
    open_api.insert(
        "properties".into(),
        json!({
            "spec": spec,
            "status": {"type": "object", "properties": {"managed": managed}},
        }),
    );
    let mut version_json = json!({
        "name": VERSION,
        "served": true,
        "referenceable": true,
        "schema": {"openAPIV3Schema": Value::Object(open_api)},
    });
    if let Some(columns) = &version.additional_printer_columns {
        version_json["additionalPrinterColumns"] =
            serde_json::to_value(columns).expect("printer columns serialise");
    }
    let mut xrd_spec = json!({
        "group": GROUP,
        "names": {"kind": K::COMPOSITE_KIND, "plural": K::COMPOSITE_PLURAL},
        "claimNames": {"kind": kind, "plural": crd.spec.names.plural},
        "defaultCompositionRef": {"name": K::DEFAULT_COMPOSITION},
    });
    if K::FOREGROUND_DELETE {
        xrd_spec["defaultCompositeDeletePolicy"] = json!("Foreground");
    }
    xrd_spec["versions"] = json!([version_json]);
    Ok(json!({
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": format!("{}.{GROUP}", K::COMPOSITE_PLURAL)},
        "spec": xrd_spec,
    }))
}

/// Drops `nullable` and `null` enum values (absent fields are how claims leave things unset) and gives
/// int-or-string fields the `anyOf` the apiserver expects.
fn tidy(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            map.remove("nullable");
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            // rustdoc links read badly in `kubectl explain`
            if let Some(Value::String(d)) = map.get_mut("description") {
                *d = d.replace("[`", "`").replace("`]", "`");
            }
            if map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
                map.insert(
                    "anyOf".into(),
                    json!([{"type": "integer"}, {"type": "string"}]),
                );
            }
            for value in map.values_mut() {
                tidy(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// The namespaced claim CRD Crossplane v1.20 creates for `xrd` (an XRD as [`xrd`] returns it),
/// following `xcrd.ForCompositeResourceClaim`: base properties, metadata.name limited to 63
/// characters, the XRD's spec and status merged with Crossplane's claim fields, category
/// `claim`, Crossplane's printer columns after the XRD's own.
pub fn claim_crd(xrd: &Value) -> Result<CustomResourceDefinition> {
    let missing = |path: &'static str| Error::Schema {
        kind: xrd["spec"]["claimNames"]["kind"]
            .as_str()
            .unwrap_or("?")
            .to_string(),
        path,
    };
    let spec = &xrd["spec"];
    let claim_names = spec
        .get("claimNames")
        .ok_or_else(|| missing("spec.claimNames"))?;
    let plural = claim_names["plural"]
        .as_str()
        .ok_or_else(|| missing("spec.claimNames.plural"))?;
    let group = spec["group"]
        .as_str()
        .ok_or_else(|| missing("spec.group"))?;
    let mut names = claim_names.clone();
    let mut categories = names["categories"].as_array().cloned().unwrap_or_default();
    categories.push(json!("claim"));
    names["categories"] = Value::Array(categories);
    let versions = spec["versions"]
        .as_array()
        .ok_or_else(|| missing("spec.versions"))?;
    let mut crd_versions = Vec::new();
    for v in versions {
        let s = &v["schema"]["openAPIV3Schema"];
        let mut spec_schema = json!({"type": "object", "properties": {}});
        let x_spec = &s["properties"]["spec"];
        if let Some(required) = x_spec.get("required") {
            spec_schema["required"] = required.clone();
        }
        for key in ["x-kubernetes-validations", "oneOf", "description"] {
            if let Some(value) = x_spec.get(key) {
                spec_schema[key] = value.clone();
            }
        }
        if let Some(preserve) = x_spec.get("x-kubernetes-preserve-unknown-fields") {
            spec_schema["x-kubernetes-preserve-unknown-fields"] = preserve.clone();
        }
        let props = spec_schema["properties"]
            .as_object_mut()
            .expect("an object");
        if let Some(own) = x_spec["properties"].as_object() {
            props.extend(own.clone());
        }
        props.extend(claim_spec_props(spec.get("defaultCompositeDeletePolicy")));

        let x_status = &s["properties"]["status"];
        let mut status_schema = json!({"type": "object", "properties": {}});
        for key in [
            "required",
            "x-kubernetes-validations",
            "description",
            "oneOf",
        ] {
            if let Some(value) = x_status.get(key) {
                status_schema[key] = value.clone();
            }
        }
        let status_props = status_schema["properties"]
            .as_object_mut()
            .expect("an object");
        if let Some(own) = x_status["properties"].as_object() {
            status_props.extend(own.clone());
        }
        status_props.extend(status_props_crossplane());

        let mut root = json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 63}}},
                "spec": spec_schema,
                "status": status_schema,
            },
        });
        if let Some(description) = s.get("description") {
            root["description"] = description.clone();
        }
        let mut columns = v["additionalPrinterColumns"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        columns.extend([
            json!({"name": "SYNCED", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Synced')].status"}),
            json!({"name": "READY", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"}),
            json!({"name": "CONNECTION-SECRET", "type": "string", "jsonPath": ".spec.writeConnectionSecretToRef.name"}),
            json!({"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
        ]);
        crd_versions.push(json!({
            "name": v["name"],
            "served": v["served"],
            "storage": v["referenceable"],
            "schema": {"openAPIV3Schema": root},
            "subresources": {"status": {}},
            "additionalPrinterColumns": columns,
        }));
    }
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": names,
            "versions": crd_versions,
        },
    });
    Ok(serde_json::from_value(crd).expect("the derived claim CRD is a CRD"))
}

fn string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

fn claim_spec_props(default_delete_policy: Option<&Value>) -> Map<String, Value> {
    let name_ref =
        json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}});
    let selector = json!({"type": "object", "required": ["matchLabels"], "properties": {"matchLabels": string_map()}});
    let mut delete_policy = json!({"type": "string", "enum": ["Background", "Foreground"]});
    if let Some(policy) = default_delete_policy {
        delete_policy["default"] = policy.clone();
    }
    let props = json!({
        "compositionRef": name_ref,
        "compositionSelector": selector,
        "compositionRevisionRef": name_ref,
        "compositionRevisionSelector": selector,
        "compositionUpdatePolicy": {"type": "string", "enum": ["Automatic", "Manual"]},
        "compositeDeletePolicy": delete_policy,
        "resourceRef": {
            "type": "object",
            "required": ["apiVersion", "kind", "name"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "name": {"type": "string"},
            },
        },
        "publishConnectionDetailsTo": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "configRef": {"type": "object", "default": {"name": "default"}, "properties": {"name": {"type": "string"}}},
                "metadata": {
                    "type": "object",
                    "properties": {
                        "labels": string_map(),
                        "annotations": string_map(),
                        "type": {"type": "string"},
                    },
                },
            },
        },
        "writeConnectionSecretToRef": name_ref,
    });
    match props {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

fn status_props_crossplane() -> Map<String, Value> {
    let props = json!({
        "conditions": {
            "description": "Conditions of the resource.",
            "type": "array",
            "x-kubernetes-list-map-keys": ["type"],
            "x-kubernetes-list-type": "map",
            "items": {
                "type": "object",
                "required": ["lastTransitionTime", "reason", "status", "type"],
                "properties": {
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                    "message": {"type": "string"},
                    "reason": {"type": "string"},
                    "status": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
        "connectionDetails": {
            "type": "object",
            "properties": {"lastPublishedTime": {"type": "string", "format": "date-time"}},
        },
        "claimConditionTypes": {
            "type": "array",
            "x-kubernetes-list-type": "set",
            "items": {"type": "string"},
        },
    });
    match props {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

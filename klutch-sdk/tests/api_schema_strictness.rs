//! Every CRD we ship rejects what its Rust type rejects: for every document the schema admits,
//! the type decodes it. Otherwise one tenant writes an object the API server accepts but the
//! backend's controllers cannot read (a condition `status: Pwned`, an APIServiceNamespace
//! without `spec`), and every list of that kind fails for everyone (issue #19 item 4).
//!
//! The documents are generated from the schemas themselves, so a new field, kind or enum is
//! covered without touching this test: the smallest document (only what is required, plus what
//! the API server defaults), full documents that cycle through every enum value and put
//! arbitrary text where the schema allows any string, and documents with `null` wherever the
//! schema says `nullable`.

use std::collections::BTreeSet;

use klutch_sdk::api::{
    APIServiceBinding, APIServiceExport, APIServiceExportRequest, APIServiceExportTemplate,
    APIServiceNamespace, AppClusterBinding, ClusterBinding,
};
use serde_json::{Map, Value, json};

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Only required properties (and those the API server defaults).
    Minimal,
    /// Every property; enums take their `n`th value (cycling).
    Full(usize),
    /// Every property; `null` wherever the schema allows it.
    Nulls,
}

/// Arbitrary text the schema allows where it has no enum: what a hostile tenant would write.
const ANY_TEXT: &str = "Pwned";

fn generate(schema: &Value, mode: Mode) -> Value {
    if matches!(mode, Mode::Nulls) && schema["nullable"] == Value::Bool(true) {
        return Value::Null;
    }
    if let Some(values) = schema["enum"].as_array().filter(|v| !v.is_empty()) {
        let n = match mode {
            Mode::Full(n) => n,
            _ => 0,
        };
        return values[n % values.len()].clone();
    }
    if schema["x-kubernetes-int-or-string"] == Value::Bool(true) {
        return match mode {
            Mode::Full(n) if n % 2 == 1 => json!("25%"),
            _ => json!(1),
        };
    }
    match schema["type"].as_str() {
        Some("object") | None => {
            let mut out = Map::new();
            let required: BTreeSet<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if let Some(props) = schema["properties"].as_object() {
                for (name, sub) in props {
                    let include = match mode {
                        Mode::Minimal => {
                            required.contains(name.as_str()) || sub.get("default").is_some()
                        }
                        _ => true,
                    };
                    if !include {
                        continue;
                    }
                    let value =
                        if matches!(mode, Mode::Minimal) && !required.contains(name.as_str()) {
                            sub["default"].clone()
                        } else {
                            generate(sub, mode)
                        };
                    out.insert(name.clone(), value);
                }
            }
            if let Some(additional) = schema["additionalProperties"]
                .as_object()
                .map(|_| &schema["additionalProperties"])
                && !matches!(mode, Mode::Minimal)
            {
                out.insert("some-key".into(), generate(additional, mode));
            }
            if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true)
                && schema["properties"].is_null()
                && !matches!(mode, Mode::Minimal)
            {
                out.insert("anything".into(), json!({ "nested": [1, "x", true] }));
            }
            Value::Object(out)
        }
        Some("array") => {
            let min = schema["minItems"].as_u64().unwrap_or(0);
            if matches!(mode, Mode::Minimal) && min == 0 {
                json!([])
            } else {
                json!([generate(&schema["items"], mode)])
            }
        }
        Some("string") => match schema["format"].as_str() {
            Some("date-time") => json!("2026-01-01T00:00:00Z"),
            Some("byte") => json!("UHduZWQ="),
            _ => json!(ANY_TEXT),
        },
        Some("integer") => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        Some("number") => json!(1.5),
        Some("boolean") => json!(true),
        Some(other) => panic!("schema type {other} not handled by the generator"),
    }
}

/// Decodes `doc` as the Rust type of `kind`.
fn decode(kind: &str, doc: Value) -> Result<(), String> {
    fn as_<T: serde::de::DeserializeOwned>(doc: Value) -> Result<(), String> {
        serde_json::from_value::<T>(doc)
            .map(drop)
            .map_err(|e| e.to_string())
    }
    match kind {
        "APIServiceBinding" => as_::<APIServiceBinding>(doc),
        "APIServiceExport" => as_::<APIServiceExport>(doc),
        "APIServiceExportRequest" => as_::<APIServiceExportRequest>(doc),
        "APIServiceNamespace" => as_::<APIServiceNamespace>(doc),
        "AppClusterBinding" => as_::<AppClusterBinding>(doc),
        "ClusterBinding" => as_::<ClusterBinding>(doc),
        "APIServiceExportTemplate" => as_::<APIServiceExportTemplate>(doc),
        other => panic!("no Rust type registered for CRD kind {other}: add it to decode()"),
    }
}

/// Every document the schema of `crd` admits that its type rejects, as `mode: error`.
fn mismatches(crd: &Value) -> Vec<String> {
    let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
    let api_version = format!(
        "{}/{}",
        crd["spec"]["group"].as_str().unwrap(),
        crd["spec"]["versions"][0]["name"].as_str().unwrap()
    );
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let modes = [
        Mode::Minimal,
        Mode::Full(0),
        Mode::Full(1),
        Mode::Full(2),
        Mode::Full(3),
        Mode::Nulls,
    ];
    let mut problems = Vec::new();
    for mode in modes {
        let mut doc = generate(schema, mode);
        // Nulls at the root are not documents.
        if !doc.is_object() {
            doc = json!({});
        }
        doc["apiVersion"] = json!(api_version);
        doc["kind"] = json!(kind);
        doc["metadata"] = json!({ "name": "x", "namespace": "y" });
        if let Err(e) = decode(&kind, doc.clone()) {
            problems.push(format!("{kind} {mode:?}: {e}\n  {doc}"));
        }
    }
    problems
}

#[test]
fn every_document_a_shipped_schema_admits_decodes_as_its_type() {
    let crds = klutch_sdk::api::crds();
    assert_eq!(crds.len(), 7, "a new CRD: register its type in decode()");
    let mut problems = Vec::new();
    for crd in crds {
        problems.extend(mismatches(&serde_json::to_value(crd).unwrap()));
    }
    assert!(
        problems.is_empty(),
        "the schema admits what the type rejects:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_a_lost_enum_and_a_lost_required_field() {
    // A condition status without its enum, and an APIServiceNamespace whose spec is optional:
    // the two ways tenants stalled the controllers.
    let mut cb = serde_json::to_value(<ClusterBinding as kube::CustomResourceExt>::crd()).unwrap();
    let status = &mut cb["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        ["properties"]["conditions"]["items"]["properties"]["status"];
    status.as_object_mut().unwrap().remove("enum");
    let problems = mismatches(&cb).join("\n");
    assert!(problems.contains(ANY_TEXT), "{problems}");

    let mut asn =
        serde_json::to_value(<APIServiceNamespace as kube::CustomResourceExt>::crd()).unwrap();
    asn["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        .as_object_mut()
        .unwrap()
        .remove("required");
    let problems = mismatches(&asn).join("\n");
    assert!(problems.contains("missing field `spec`"), "{problems}");
}

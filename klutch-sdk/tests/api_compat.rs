//! The generated CRDs are wire compatible with Klutch v1.5's: every field path, type, enum value,
//! default and CEL rule of the reference CRDs exists in ours, and we require nothing they don't.
//! Also: the committed `deploy/crd/` is what the types generate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn reference_dir() -> PathBuf {
    let dir = repo().join("../shared/reference/klutch-v1.5/bind");
    assert!(
        dir.is_dir(),
        "the Klutch v1.5 reference is missing at {}: check out ../shared beside the repository",
        dir.display()
    );
    dir
}

fn load_yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

#[derive(Debug, Default)]
struct Field {
    type_: Option<String>,
    enum_: BTreeSet<String>,
    default: Option<Value>,
    required: BTreeSet<String>,
    rules: BTreeSet<String>,
    preserve_unknown: bool,
}

/// Flattens an OpenAPI schema into `path -> Field`.
fn flatten(schema: &Value, path: &str, out: &mut BTreeMap<String, Field>) {
    let field = Field {
        type_: schema["type"].as_str().map(str::to_owned),
        enum_: schema["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.to_string())
            .collect(),
        default: schema.get("default").cloned(),
        required: schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        rules: schema["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| {
                v["rule"]
                    .as_str()
                    .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .collect(),
        preserve_unknown: schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true),
    };
    out.insert(path.to_owned(), field);
    if let Some(props) = schema["properties"].as_object() {
        for (name, sub) in props {
            flatten(sub, &format!("{path}.{name}"), out);
        }
    }
    if schema.get("items").is_some() {
        flatten(&schema["items"], &format!("{path}[]"), out);
    }
    if schema["additionalProperties"].is_object() {
        flatten(&schema["additionalProperties"], &format!("{path}{{}}"), out);
    }
}

fn schema_of(crd: &Value) -> BTreeMap<String, Field> {
    let mut out = BTreeMap::new();
    flatten(
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        "",
        &mut out,
    );
    out
}

/// Fields we require and Klutch does not, each because our type cannot do without it and every
/// Go component writes it anyway (a stored object without it would stall the controllers'
/// lists, issue #19): `(kind, path, field)`.
const DELIBERATELY_REQUIRED: &[(&str, &str, &str)] = &[
    // Go's `Spec` is a non-pointer struct without omitempty: always serialised.
    ("APIServiceBinding", "", "spec"),
    ("APIServiceNamespace", "", "spec"),
];

fn kind_of(crd: &Value) -> &str {
    crd["spec"]["names"]["kind"].as_str().unwrap_or_default()
}

/// Compares one reference CRD with ours; returns every incompatibility.
fn compare(reference: &Value, ours: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["group", "scope"] {
        if reference["spec"][key] != ours["spec"][key] {
            problems.push(format!(
                "spec.{key}: {} != {}",
                reference["spec"][key], ours["spec"][key]
            ));
        }
    }
    for key in ["kind", "plural", "singular", "shortNames", "categories"] {
        if !reference["spec"]["names"][key].is_null()
            && reference["spec"]["names"][key] != ours["spec"]["names"][key]
        {
            problems.push(format!(
                "names.{key}: {} != {}",
                reference["spec"]["names"][key], ours["spec"]["names"][key]
            ));
        }
    }
    let ref_version = &reference["spec"]["versions"][0];
    let our_version = &ours["spec"]["versions"][0];
    for key in ["name", "served", "storage", "subresources"] {
        if ref_version[key] != our_version[key] {
            problems.push(format!(
                "versions[0].{key}: {} != {}",
                ref_version[key], our_version[key]
            ));
        }
    }
    let column_names = |v: &Value| -> BTreeSet<String> {
        v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    for missing in column_names(ref_version).difference(&column_names(our_version)) {
        problems.push(format!("printer column {missing} missing"));
    }

    let theirs = schema_of(reference);
    let mine = schema_of(ours);
    for (path, field) in &theirs {
        if path.starts_with(".metadata") || path == ".apiVersion" || path == ".kind" {
            continue;
        }
        // Below a preserve-unknown-fields object anything goes.
        if theirs
            .iter()
            .any(|(p, f)| f.preserve_unknown && path.starts_with(&format!("{p}.")))
        {
            continue;
        }
        let Some(our) = mine.get(path) else {
            problems.push(format!("{path}: missing"));
            continue;
        };
        if field.type_.is_some() && our.type_ != field.type_ {
            problems.push(format!("{path}: type {:?} != {:?}", our.type_, field.type_));
        }
        if !our.enum_.is_empty() && !field.enum_.is_subset(&our.enum_) {
            problems.push(format!(
                "{path}: enum {:?} lacks some of {:?}",
                our.enum_, field.enum_
            ));
        }
        if field.default != our.default {
            problems.push(format!(
                "{path}: default {:?} != {:?}",
                our.default, field.default
            ));
        }
        if let Some(extra) = our.required.difference(&field.required).find(|extra| {
            !DELIBERATELY_REQUIRED.contains(&(kind_of(ours), path.as_str(), extra.as_str()))
        }) {
            problems.push(format!("{path}: we require {extra}, Klutch does not"));
        }
        for rule in field.rules.difference(&our.rules) {
            problems.push(format!("{path}: CEL rule missing: {rule}"));
        }
        if field.preserve_unknown && !our.preserve_unknown {
            problems.push(format!("{path}: must preserve unknown fields"));
        }
    }
    problems
}

#[test]
fn generated_crds_are_compatible_with_klutch_v1_5() {
    let reference = reference_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(reference.join("deploy/crd"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(reference.join(
        "contrib/deploy/crd/example-backend.klutch.anynines.com_apiserviceexporttemplates.yaml",
    ));
    let ours: BTreeMap<String, Value> = klutch_sdk::api::crds()
        .into_iter()
        .map(|crd| {
            (
                crd.metadata.name.clone().unwrap(),
                serde_json::to_value(crd).unwrap(),
            )
        })
        .collect();
    assert_eq!(files.len(), 7, "{files:?}");
    assert_eq!(ours.len(), 7);
    let mut problems = Vec::new();
    for file in files {
        let reference = load_yaml(&file);
        let name = reference["metadata"]["name"].as_str().unwrap().to_owned();
        let Some(our) = ours.get(&name) else {
            problems.push(format!("{name}: no such CRD of ours"));
            continue;
        };
        problems.extend(
            compare(&reference, our)
                .into_iter()
                .map(|p| format!("{name} {p}")),
        );
    }
    assert!(
        problems.is_empty(),
        "{} incompatibilities:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn comparison_catches_incompatibilities() {
    // The checker itself must see a removed field, a changed type and a lost CEL rule.
    let reference =
        load_yaml(&reference_dir().join("deploy/crd/klutch.anynines.com_clusterbindings.yaml"));
    let mut broken =
        serde_json::to_value(<klutch_sdk::api::ClusterBinding as kube::CustomResourceExt>::crd())
            .unwrap();
    let spec =
        &mut broken["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    spec["properties"]
        .as_object_mut()
        .unwrap()
        .remove("providerPrettyName");
    spec["properties"]["kubeconfigSecretRef"]["properties"]["name"]["type"] = "integer".into();
    spec["properties"]["kubeconfigSecretRef"]
        .as_object_mut()
        .unwrap()
        .remove("x-kubernetes-validations");
    let problems = compare(&reference, &broken).join("\n");
    assert!(
        problems.contains(".spec.providerPrettyName: missing"),
        "{problems}"
    );
    assert!(
        problems.contains(".spec.kubeconfigSecretRef.name: type"),
        "{problems}"
    );
    assert!(
        problems.contains("CEL rule missing: self == oldSelf"),
        "{problems}"
    );
}

#[test]
fn committed_crds_are_up_to_date() {
    let dir = repo().join("deploy/crd");
    let mut stale = Vec::new();
    let generated = klutch_sdk::api::crd_files().unwrap();
    for (file, yaml) in &generated {
        match std::fs::read_to_string(dir.join(file)) {
            Ok(committed) if &committed == yaml => {}
            Ok(_) => stale.push(format!("{file} differs")),
            Err(e) => stale.push(format!("{file}: {e}")),
        }
    }
    let committed: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = generated.iter().map(|(f, _)| f.clone()).collect();
    for extra in committed.difference(&expected) {
        stale.push(format!("{extra} is not generated any more"));
    }
    assert!(
        stale.is_empty(),
        "deploy/crd is stale; run `cargo run -p klutch-sdk --example crdgen`:\n{}",
        stale.join("\n")
    );
}

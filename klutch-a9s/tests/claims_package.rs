//! The generated configuration package: the committed `crossplane-api/` is current, and every
//! claim parameter reaches the provider through a composition patch.

use std::collections::BTreeSet;
use std::path::Path;

use klutch_a9s::claims::composition::{self, A8S_POSTGRESQL_PARAMETERS, A9S_PARAMETERS};
use klutch_a9s::claims::package;
use serde_json::Value;

#[test]
fn committed_package_is_generated_from_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crossplane-api");
    let mut stale = Vec::new();
    let mut generated = BTreeSet::new();
    for (path, yaml) in package::files().expect("generate the package") {
        let committed = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
        if committed != yaml {
            stale.push(path.clone());
        }
        generated.insert(path);
    }
    assert!(
        stale.is_empty(),
        "crossplane-api/ is out of date in {stale:?}; run `cargo run -p klutch-a9s --example crossplane-api`"
    );
    // nothing left over from removed kinds or compositions
    let mut stack = vec![root.join("apis"), root.join("examples")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&root).unwrap().to_string_lossy().to_string();
                assert!(
                    generated.contains(&rel),
                    "{rel} is not generated; remove it"
                );
            }
        }
    }
    assert_eq!(generated.len(), 1 + 11 + 15 + package::examples().len());
}

/// Leaf paths below `spec.parameters` of an XRD.
fn parameter_paths(schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match schema.get("properties").and_then(Value::as_object) {
        Some(props) if !props.is_empty() => {
            for (k, v) in props {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                parameter_paths(v, &p, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

#[test]
fn every_parameter_is_patched_to_the_broker() {
    let xrds = package::xrds().unwrap();
    for svc in A9S_PARAMETERS {
        let (claim, service, patched) = (svc.claim, svc.service, svc.parameters);
        let xrd = xrds
            .iter()
            .find(|x| x["spec"]["claimNames"]["plural"] == claim)
            .unwrap();
        let schema = &xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["parameters"];
        let mut declared = BTreeSet::new();
        parameter_paths(schema, "", &mut declared);
        if service == "postgresql" {
            // a8s-only parameters are rejected on a9s and not patched there
            for p in [
                "maxLocksPerTransaction",
                "sslCiphers",
                "sslMinProtocolVersion",
            ] {
                declared.remove(p);
            }
        }
        let patched: BTreeSet<String> = patched.iter().map(|(f, _)| f.to_string()).collect();
        assert_eq!(declared, patched, "{claim}");
    }
    // a8s PostgreSQL: everything but the a9s-only parameters
    let pg = &xrds[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["parameters"];
    let mut declared = BTreeSet::new();
    parameter_paths(pg, "", &mut declared);
    for p in [
        "dataChecksums",
        "effectiveCacheSize",
        "workMem",
        "maintenanceWorkMem",
        "idleInTransactionSessionTimeout",
        "rolePrivileges",
        "walLevelLogical",
    ] {
        declared.remove(p);
    }
    let patched: BTreeSet<String> = A8S_POSTGRESQL_PARAMETERS
        .iter()
        .map(|(f, _, _)| f.to_string())
        .collect();
    assert_eq!(declared, patched);
}

#[test]
fn every_xrd_default_composition_exists() {
    let compositions: BTreeSet<String> = composition::all()
        .into_iter()
        .map(|(_, c)| c["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    for (_, _, default) in package::claim_kinds() {
        assert!(compositions.contains(default), "{default}");
    }
    for (claim, comp) in composition::all() {
        let kind = comp["spec"]["compositeTypeRef"]["kind"].as_str().unwrap();
        let (_, composite, _) = package::claim_kinds()
            .into_iter()
            .find(|(plural, _, _)| plural.trim_start_matches('x') == claim)
            .unwrap();
        assert_eq!(kind, composite, "{claim}");
    }
}

#[test]
fn organization_and_space_guids_are_configurable() {
    let options = composition::Options {
        organization_guid: "org-1".into(),
        space_guid: "space-1".into(),
    };
    let mut a9s_instances = 0;
    for (_, comp) in composition::all_with(&options) {
        let base = &comp["spec"]["pipeline"][0]["input"]["resources"][0]["base"];
        if base["kind"] == "ServiceInstance" {
            assert_eq!(base["spec"]["forProvider"]["organizationGuid"], "org-1");
            assert_eq!(base["spec"]["forProvider"]["spaceGuid"], "space-1");
            a9s_instances += 1;
        }
    }
    assert_eq!(a9s_instances, 8);
    // the default is Klutch's
    let default = composition::all();
    let base = &default[0].1["spec"]["pipeline"][0]["input"]["resources"][0]["base"];
    assert_eq!(
        base["spec"]["forProvider"]["organizationGuid"],
        composition::ORGANIZATION_GUID
    );
}

/// Deserialises `doc` as `K` and serialises it again.
fn round_trip<K: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Value {
    let typed: K = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("does not deserialise: {e}\n{doc}"));
    serde_json::to_value(&typed).unwrap()
}

#[test]
fn every_klutch_claim_round_trips_through_the_types() {
    use klutch_a9s::claims::{
        backup, binding, keyvalue, logme2, mariadb, messaging, mongodb, postgresql, prometheus,
        search,
    };
    let reference =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/klutch-v1.5");
    let mut files = Vec::new();
    let mut stack = vec![
        reference.join("crossplane-api/examples"),
        reference.join("test/validations"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut checked = 0;
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("create-invalid-") {
            continue; // e.g. unknown services or missing required fields
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            // update cases: the base object
            let doc = if doc.get("base").is_some() {
                doc["base"].clone()
            } else {
                doc
            };
            let again = match doc["kind"].as_str().unwrap() {
                "PostgresqlInstance" => round_trip::<postgresql::PostgresqlInstance>(&doc),
                "MongodbInstance" => round_trip::<mongodb::MongodbInstance>(&doc),
                "MariadbInstance" => round_trip::<mariadb::MariadbInstance>(&doc),
                "MessagingInstance" => round_trip::<messaging::MessagingInstance>(&doc),
                "SearchInstance" => round_trip::<search::SearchInstance>(&doc),
                "Logme2Instance" => round_trip::<logme2::Logme2Instance>(&doc),
                "PrometheusInstance" => round_trip::<prometheus::PrometheusInstance>(&doc),
                "KeyvalueInstance" => round_trip::<keyvalue::KeyvalueInstance>(&doc),
                "ServiceBinding" => round_trip::<binding::ServiceBinding>(&doc),
                "Backup" => round_trip::<backup::Backup>(&doc),
                "Restore" => round_trip::<backup::Restore>(&doc),
                other => panic!("unknown kind {other} in {name}"),
            };
            assert_eq!(
                again["spec"], doc["spec"],
                "{name}: the types lose or change fields"
            );
            checked += 1;
        }
    }
    assert!(checked >= 80, "{checked}");
}

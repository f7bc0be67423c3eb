//! The release bundles on a real kube-apiserver: every object of `install` and `update`, and of
//! `configure` after its `${VARS}` are filled as `envsubst` would, is accepted by a server-side
//! dry-run apply — with Crossplane's, provider-kubernetes' and provider-anynines' CRDs installed
//! from their pinned sources.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_release::{Bundle, BundleKind, Options};
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde_json::Value;

/// Crossplane v1 core: the package CRDs (Configuration, Provider, DeploymentRuntimeConfig) of
/// the Crossplane versions the bundles target (1.17–1.20); the same version as the `crossplane`
/// CLI in `testbins/`.
const CROSSPLANE: (&str, &str) = ("github.com/crossplane/crossplane", "v1.20.7");
/// provider-kubernetes, the version `klutch_release::DEFAULT_PROVIDER_KUBERNETES` installs.
const PROVIDER_KUBERNETES: (&str, &str) = (
    "github.com/crossplane-contrib/provider-kubernetes",
    "v0.17.1",
);

/// The directory of a Go module in the module cache, downloaded (checksum-verified) if needed.
fn go_module_dir((module, version): (&str, &str)) -> PathBuf {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("go")
        .args(["mod", "download", "-json", &format!("{module}@{version}")])
        .current_dir(tmp.path())
        .env("GOFLAGS", "-mod=mod")
        .output()
        .expect("run `go mod download` (Go is required by the test environment)");
    let info: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "go mod download {module}@{version} failed ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        info.get("Error").is_none(),
        "go mod download {module}@{version}: {info}"
    );
    PathBuf::from(info["Dir"].as_str().expect("Dir in go mod download output"))
}

fn crds_in(dir: PathBuf) -> Vec<CustomResourceDefinition> {
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| serde_saphyr::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect()
}

fn envsubst(value: &mut Value, vars: &BTreeMap<String, String>) {
    match value {
        Value::String(s) => {
            for (k, v) in vars {
                *s = s.replace(&format!("${{{k}}}"), v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| envsubst(v, vars)),
        Value::Object(map) => map.values_mut().for_each(|v| envsubst(v, vars)),
        _ => {}
    }
}

/// Server-side dry-run apply of every object; returns the failures (kind/name: message).
async fn dry_run(client: &kube::Client, bundle: &Bundle) -> Vec<String> {
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut failures = Vec::new();
    for object in &bundle.objects {
        let object: DynamicObject = serde_json::from_value(object.clone()).unwrap();
        let types = object
            .types
            .clone()
            .expect("every bundle object has apiVersion and kind");
        let name = format!(
            "{} {}",
            types.kind,
            object.metadata.name.clone().unwrap_or_default()
        );
        let (group, version) = types
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", &types.api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, &types.kind);
        let Some((ar, caps)): Option<(ApiResource, ApiCapabilities)> = discovery.resolve_gvk(&gvk)
        else {
            failures.push(format!(
                "{name}: the apiserver does not serve {}",
                types.api_version
            ));
            continue;
        };
        let api: Api<DynamicObject> = match (caps.scope, object.metadata.namespace.as_deref()) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
            (Scope::Namespaced, None) => {
                failures.push(format!("{name}: namespaced but has no namespace"));
                continue;
            }
            (Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
        };
        let params = PatchParams::apply("klutch-release-test").dry_run();
        let obj_name = object.metadata.name.clone().unwrap_or_default();
        if let Err(e) = api.patch(&obj_name, &params, &Patch::Apply(&object)).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    failures
}

#[tokio::test]
async fn bundles_apply_with_server_side_dry_run() {
    klutch_sdk::tls::install_crypto_provider();
    let env = TestEnv::builder()
        .cluster("control-plane")
        .start()
        .await
        .expect("start a cluster");
    let client = env["control-plane"].client().await.unwrap();

    // What a control plane has before `install`: Crossplane (its CRDs) and its namespace.
    let mut crds = crds_in(go_module_dir(CROSSPLANE).join("cluster/crds"));
    crds.extend(crds_in(
        go_module_dir(PROVIDER_KUBERNETES).join("package/crds"),
    ));
    for crd in &mut crds {
        // Crossplane fills in the conversion webhook's Service when it installs a package; here
        // nothing serves it, and the bundles need only the schemas.
        if let Some(conversion) = crd.spec.conversion.as_mut() {
            conversion.strategy = "None".into();
            conversion.webhook = None;
        }
        install_crd(&client, crd).await.unwrap();
    }
    for ns in ["crossplane-system", klutch_release::bind::BACKEND_NAMESPACE] {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }

    let opts = Options::new("1.6.0").unwrap();
    let bundles = klutch_release::bundles(&opts).unwrap();
    let kinds: Vec<_> = bundles.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [
            BundleKind::Install,
            BundleKind::Update,
            BundleKind::Configure
        ]
    );

    // install: CRDs in the bundle are only dry-run, so install them for real afterwards (as
    // Crossplane would install provider-anynines' CRDs from its package) before `configure`.
    let install = &bundles[0];
    let failures = dry_run(&client, install).await;
    assert!(
        failures.is_empty(),
        "install rejected:\n{}",
        failures.join("\n")
    );
    let failures = dry_run(&client, &bundles[1]).await;
    assert!(
        failures.is_empty(),
        "update rejected:\n{}",
        failures.join("\n")
    );

    for object in &install.objects {
        if object["kind"] == "CustomResourceDefinition" {
            let crd: CustomResourceDefinition = serde_json::from_value(object.clone()).unwrap();
            install_crd(&client, &crd).await.unwrap();
        }
    }
    for crd in klutch_a9s::provider::api::crds() {
        install_crd(&client, &crd).await.unwrap();
    }

    // configure, filled the way the docs say (envsubst from a local-vars file).
    let vars: BTreeMap<String, String> = klutch_release::configure_variables()
        .into_iter()
        .map(|var| {
            let value = if var.starts_with("BASE64ENCODED_") {
                "c2VjcmV0".to_owned()
            } else if var.ends_with("_URL") || var.ends_with("_ADDRESS") {
                "https://broker.example.com:8443".to_owned()
            } else {
                "value".to_owned()
            };
            (var, value)
        })
        .collect();
    let mut configure = bundles[2].clone();
    configure
        .objects
        .iter_mut()
        .for_each(|o| envsubst(o, &vars));
    let yaml = serde_json::to_string_pretty(&configure.objects).unwrap();
    assert!(
        !yaml.contains("${"),
        "a placeholder was left unfilled:\n{yaml}"
    );
    let failures = dry_run(&client, &configure).await;
    assert!(
        failures.is_empty(),
        "configure rejected:\n{}",
        failures.join("\n")
    );
}

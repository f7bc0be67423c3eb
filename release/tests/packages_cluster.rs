//! The Crossplane packages installed by Crossplane core's package manager: both xpkgs
//! (`klutch_release::packages`) are pushed to a real Distribution registry over TLS (test CA),
//! a cluster runs Crossplane core v1.20 (`--package-runtime=External`, trusting the registry's
//! CA through `TestEnvBuilder::crossplane_ca_bundle`), and `Provider` and `Configuration`
//! objects reference the packages by digest. Core pulls them, installs the provider's CRDs and
//! the configuration's XRDs and Compositions, and reports both Installed and Healthy. Then
//! provider-anynines' engine runs as a local process against those CRDs (with the fake a9s
//! broker of `klutch_a9s::testing`) and a `PostgresqlInstance` claim becomes Ready through them.
//!
//! The provider package's runtime image never runs (External runtime), so the test embeds a
//! controller image built from a placeholder file instead of a musl build of provider-anynines:
//! what is installed from the package is its `package.yaml`, not the binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_a9s::claims::ServiceInstanceType;
use klutch_a9s::provider::api::ServiceType;
use klutch_a9s::provider::metrics::Metrics;
use klutch_a9s::testing::{FakeA9sBroker, FakeA9sBrokerConfig};
use klutch_osb::testing::FakeBrokerConfig;
use klutch_release::images::{self, BuiltImage, ImageBuild};
use klutch_release::packages::{CONFIGURATION_PACKAGE, PROVIDER_PACKAGE, PackageBuild};
use klutch_sdk::testenv::{Binaries, Registry, TestEnv, eventually};
use klutch_testenv::journey::{self, FAKE_PASSWORD, FAKE_USER};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const CLUSTER: &str = "control-plane";
const WAIT: Duration = Duration::from_secs(180);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("release/ is in the workspace")
        .to_owned()
}

fn pkg(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "pkg.crossplane.io".into(),
        version: "v1".into(),
        api_version: "pkg.crossplane.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a str> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?["status"]
        .as_str()
}

/// Builds the placeholder controller image and both packages in `work_dir` and pushes them.
fn push_packages(registry: &Registry, binaries: &Binaries, work_dir: &Path) -> Vec<BuiltImage> {
    let work_dir = work_dir.to_owned();
    let bin_dir = work_dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let controller = images::find("provider-anynines-controller").unwrap();
    std::fs::write(
        bin_dir.join(controller.binary),
        b"placeholder: the External package runtime never runs this image\n",
    )
    .unwrap();
    let build = ImageBuild {
        version: VERSION.to_owned(),
        registry: format!("{}/klutch", registry.host()),
        revision: "0123456789abcdef0123456789abcdef01234567".into(),
        bin_dir,
        ca_bundle: images::DEFAULT_CA_BUNDLE.into(),
        crane: binaries.crane().unwrap(),
        work_dir: work_dir.clone(),
        mtime: 0,
        registry_ca: Some(registry.ca_file().to_owned()),
        only: vec![controller.name.to_owned()],
    };
    let built = build.run().unwrap();
    PackageBuild {
        version: VERSION.to_owned(),
        registry: build.registry.clone(),
        crossplane: binaries.dir().join("crossplane"),
        crane: build.crane.clone(),
        registry_ca: build.registry_ca.clone(),
        provider_root: workspace_root().join("bins/provider-anynines/package"),
        configuration_root: workspace_root().join("crossplane-api"),
        work_dir,
    }
    .run(&built[0])
    .unwrap()
}

async fn apply(client: &kube::Client, resource: &ApiResource, doc: Value) {
    let obj: DynamicObject = serde_json::from_value(doc).unwrap();
    let name = obj.metadata.name.clone().unwrap();
    let api: Api<DynamicObject> = match &obj.metadata.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    api.patch(
        &name,
        &PatchParams::apply("klutch-release-test").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {} {name}: {e}", resource.kind));
}

async fn wait_condition(
    env: &TestEnv,
    client: &kube::Client,
    resource: &ApiResource,
    name: &str,
    types: &[&str],
) -> Value {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let what = format!("{} {name} {types:?}=True", resource.kind);
    let found = eventually(&what, WAIT, || async {
        let obj = serde_json::to_value(api.get(name).await.ok()?).ok()?;
        types
            .iter()
            .all(|t| condition(&obj, t) == Some("True"))
            .then_some(obj)
    })
    .await;
    match found {
        Ok(obj) => obj,
        Err(e) => {
            let now = api
                .get(name)
                .await
                .map(|o| serde_json::to_value(o).unwrap());
            panic!(
                "{e}\n{} {name} now: {now:?}\n{}",
                resource.kind,
                env.crossplane(CLUSTER).unwrap().log_tails(40)
            )
        }
    }
}

async fn crd_established(env: &TestEnv, crds: &Api<CustomResourceDefinition>, name: &str) {
    let result = eventually(&format!("CRD {name} Established"), WAIT, || async {
        let crd = crds.get_opt(name).await.ok()??;
        crd.status?
            .conditions?
            .into_iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;
    if let Err(e) = result {
        panic!("{e}\n{}", env.crossplane(CLUSTER).unwrap().log_tails(40));
    }
}

#[tokio::test]
async fn core_installs_the_packages_from_a_registry_and_a_claim_reconciles_through_them() {
    let registry = Registry::start().await.unwrap();
    let binaries = Binaries::find().unwrap();
    let work_dir = tempfile::tempdir().unwrap();
    let packages = push_packages(&registry, &binaries, work_dir.path());
    let package = |name: &str| packages.iter().find(|p| p.name == name).unwrap();
    let (provider_pkg, configuration_pkg) =
        (package(PROVIDER_PACKAGE), package(CONFIGURATION_PACKAGE));

    let env = TestEnv::builder()
        .cluster(CLUSTER)
        .crossplane(CLUSTER)
        .crossplane_ca_bundle(registry.ca_file())
        .start_timeout(WAIT)
        .start()
        .await
        .unwrap();
    let cp = env[CLUSTER].client().await.unwrap();

    // Both by digest. The configuration's one dependency, function-patch-and-transform, is
    // registered by the harness as a paused Function (no image to pull), which the dependency
    // manager would try to resolve and install from xpkg.upbound.io: skip resolution.
    // No runtime hook makes the provider's TLS Secrets under the External runtime; without
    // them the ProviderRevision never becomes healthy.
    env.crossplane(CLUSTER)
        .unwrap()
        .provider_tls_secrets(&cp, PROVIDER_PACKAGE)
        .await
        .unwrap();
    let providers = pkg("Provider", "providers");
    let configurations = pkg("Configuration", "configurations");
    apply(
        &cp,
        &providers,
        json!({
            "apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
            "metadata": { "name": PROVIDER_PACKAGE },
            "spec": { "package": provider_pkg.by_digest() },
        }),
    )
    .await;
    apply(
        &cp,
        &configurations,
        json!({
            "apiVersion": "pkg.crossplane.io/v1", "kind": "Configuration",
            "metadata": { "name": CONFIGURATION_PACKAGE },
            "spec": {
                "package": configuration_pkg.by_digest(),
                "skipDependencyResolution": true,
            },
        }),
    )
    .await;
    let provider = wait_condition(
        &env,
        &cp,
        &providers,
        PROVIDER_PACKAGE,
        &["Installed", "Healthy"],
    )
    .await;
    let configuration = wait_condition(
        &env,
        &cp,
        &configurations,
        CONFIGURATION_PACKAGE,
        &["Installed", "Healthy"],
    )
    .await;
    for (obj, digest) in [
        (&provider, &provider_pkg.digest),
        (&configuration, &configuration_pkg.digest),
    ] {
        let resolved = obj["status"]["resolvedPackage"]
            .as_str()
            .unwrap_or_default();
        assert!(
            resolved.ends_with(digest.as_str()),
            "{resolved} is the pushed {digest}"
        );
    }

    // What the package manager installed: the provider's CRDs (owned by its revision), the
    // XRDs (Established and Offered) with their claim CRDs, and the Compositions.
    let crds: Api<CustomResourceDefinition> = Api::all(cp.clone());
    for crd in klutch_a9s::provider::api::crds() {
        let name = crd.metadata.name.unwrap();
        crd_established(&env, &crds, &name).await;
        let installed = crds.get(&name).await.unwrap();
        let owners = installed.metadata.owner_references.unwrap_or_default();
        assert!(
            owners.iter().any(|o| o.kind == "ProviderRevision"),
            "CRD {name} was installed by the package manager: {owners:?}"
        );
    }
    let xrds_resource = ApiResource {
        group: "apiextensions.crossplane.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.crossplane.io/v1".into(),
        kind: "CompositeResourceDefinition".into(),
        plural: "compositeresourcedefinitions".into(),
    };
    let xrds = klutch_a9s::claims::package::xrds().unwrap();
    assert!(!xrds.is_empty());
    for xrd in &xrds {
        let name = xrd["metadata"]["name"].as_str().unwrap();
        wait_condition(&env, &cp, &xrds_resource, name, &["Established", "Offered"]).await;
        let claim_crd = format!(
            "{}.{}",
            xrd["spec"]["claimNames"]["plural"].as_str().unwrap(),
            xrd["spec"]["group"].as_str().unwrap()
        );
        crd_established(&env, &crds, &claim_crd).await;
    }

    // provider-anynines' engine against those CRDs, a fake a9s PostgreSQL broker behind it.
    let kind = ServiceInstanceType::Postgresql;
    let broker = FakeA9sBroker::start(FakeA9sBrokerConfig {
        osb: FakeBrokerConfig {
            catalog: journey::catalog(kind, &[]).unwrap(),
            basic_auth: Some((FAKE_USER.into(), FAKE_PASSWORD.into())),
            ..FakeBrokerConfig::default()
        },
        kind: journey::data_service(kind),
        ..FakeA9sBrokerConfig::default()
    })
    .await
    .unwrap();
    journey::credentials_secret(&cp).await.unwrap();
    journey::provider_config(
        &cp,
        &format!("{kind}-service-broker"),
        &broker.url(),
        ServiceType::Servicebroker,
    )
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let provider_task = tokio::spawn(klutch_a9s::provider::run::controllers(
        cp.clone(),
        journey::JourneyConfig::default().provider,
        std::sync::Arc::new(Metrics::new()),
        async move {
            let _ = stopped.await;
        },
    ));

    let ns = "shop";
    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": ns } })).unwrap();
    Api::<Namespace>::all(cp.clone())
        .create(&Default::default(), &namespace)
        .await
        .unwrap();
    let text = std::fs::read_to_string(
        workspace_root().join("crossplane-api/examples/postgresql-a9s.yaml"),
    )
    .unwrap();
    let mut claim: Value = serde_saphyr::from_str(text.split("\n---\n").nth(1).unwrap()).unwrap();
    assert_eq!(claim["kind"], "PostgresqlInstance");
    claim["metadata"]["namespace"] = json!(ns);
    let claim_resource = journey::claim_resource("PostgresqlInstance").unwrap();
    apply(&cp, &claim_resource, claim.clone()).await;
    let name = claim["metadata"]["name"].as_str().unwrap();
    let claims: Api<DynamicObject> = Api::namespaced_with(cp.clone(), ns, &claim_resource);
    let ready = eventually(
        &format!("PostgresqlInstance {ns}/{name} Ready"),
        WAIT,
        || async {
            let obj = serde_json::to_value(claims.get(name).await.ok()?).ok()?;
            (condition(&obj, "Ready") == Some("True")).then_some(obj)
        },
    )
    .await;
    let ready = match ready {
        Ok(obj) => obj,
        Err(e) => panic!(
            "{e}\nclaim now: {:?}\n{}",
            claims
                .get(name)
                .await
                .map(|o| serde_json::to_value(o).unwrap()),
            env.crossplane(CLUSTER).unwrap().log_tails(60)
        ),
    };
    assert!(
        ready["status"]["managed"]["state"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "the composed status reaches the claim: {ready}"
    );
    assert_eq!(
        broker.osb().count(klutch_osb::testing::Route::Provision),
        1,
        "one provision at the broker"
    );

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), provider_task).await;
}

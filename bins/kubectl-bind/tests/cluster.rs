//! Everything `kubectl bind apiservice` and the konnector installer do to real clusters: the
//! app cluster and a "provider" cluster on which this test plays the backend's export-request
//! controller.

mod common;

use common::{Verdict, backend_controller, fixture, io};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::{APIServiceBinding, ClaimState};
use klutch_sdk::deploy::konnector::{KLUTCH_GO_REPOSITORY, default_repository};
use kube::api::{Api, Patch, PatchParams, PostParams};

const REQUEST: &str = "apiVersion: klutch.anynines.com/v1alpha1
kind: APIServiceExportRequest
metadata:
  name: mangodbs.mangodb.com
spec:
  resources:
  - group: mangodb.com
    resource: mangodbs
    permissionClaims:
    - {resource: secrets, version: v1, selector: {owner: Provider}}
    - {resource: configmaps, version: v1, selector: {owner: Provider}}
";

fn write(f: &common::Fixture, name: &str, bytes: &[u8]) -> String {
    let path = f.dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

fn apiservice_args(f: &common::Fixture, extra: &[&str]) -> Vec<String> {
    let request = write(f, "request.yaml", REQUEST.as_bytes());
    let remote = write(f, "provider.kubeconfig", &f.provider_kubeconfig);
    let mut args: Vec<String> = [
        "kubectl-bind",
        "apiservice",
        "-f",
        &request,
        "--remote-kubeconfig",
        &remote,
        "--kubeconfig",
        f.app_kubeconfig.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test]
async fn kubectl_plugin_list_finds_the_binary() {
    let kubectl = klutch_sdk::testenv::Binaries::find()
        .unwrap()
        .kubectl()
        .unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_kubectl-bind"));
    let dir = binary.parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(kubectl)
        .args(["plugin", "list", "--name-only"])
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.trim() == "kubectl-bind"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn apiservice_binds_installs_the_konnector_and_reuses_the_secret() {
    let f = fixture("cluster-apiservice").await;
    let _backend = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Succeed);
    let (io1, out, err) = io("v1.6.0", "");
    let code = kubectl_bind::run(apiservice_args(&f, &["--accept-claims=secrets"]), io1).await;
    assert_eq!(code, 0, "{}", err.contents());
    insta::with_settings!({filters => common::filters()}, {
        insta::assert_snapshot!("apiservice_stderr", err.contents());
        insta::assert_snapshot!("apiservice_table", out.contents());
    });

    // The binding, with the consent stored per claim, pointing to the created Secret.
    let bindings: Api<APIServiceBinding> = Api::namespaced(f.app.clone(), "klutch-bind");
    let binding = bindings.get("mangodbs.mangodb.com").await.unwrap();
    let states: Vec<(String, ClaimState)> = binding
        .spec
        .permission_claims
        .iter()
        .map(|c| (c.claim.group_resource.resource.clone(), c.state))
        .collect();
    assert_eq!(
        states,
        [
            ("secrets".into(), ClaimState::Accepted),
            ("configmaps".into(), ClaimState::Rejected)
        ]
    );
    let secrets = common::kubeconfig_secrets(&f.app).await;
    assert_eq!(secrets.len(), 1);
    assert_eq!(binding.spec.kubeconfig_secret_ref.name, secrets[0]);
    let ready = &binding.status.unwrap().conditions[0];
    assert_eq!(
        (ready.type_.as_str(), ready.reason.as_deref()),
        ("Ready", Some("Pending"))
    );

    // The konnector of the CLI's version with its narrow RBAC, plus the binding's ClusterRole.
    assert_eq!(
        common::konnector_image(&f.app).await,
        Some(format!("{}:v1.6.0", default_repository()))
    );
    let deployment = Api::<Deployment>::namespaced(f.app.clone(), "klutch-bind")
        .get("konnector")
        .await
        .unwrap();
    assert_eq!(deployment.spec.unwrap().replicas, Some(2));
    Api::<Role>::namespaced(f.app.clone(), "klutch-bind")
        .get("klutch-bind-konnector")
        .await
        .unwrap();
    let roles: Api<ClusterRole> = Api::all(f.app.clone());
    let base = roles.get("klutch-bind-konnector").await.unwrap();
    assert!(
        !serde_json::to_string(&base).unwrap().contains("\"*\""),
        "no wildcard rules"
    );
    let per_binding = roles
        .get("klutch-bind-konnector-mangodbs.mangodb.com")
        .await
        .unwrap();
    let resources: Vec<String> = per_binding
        .rules
        .unwrap()
        .into_iter()
        .flat_map(|r| r.resources.unwrap_or_default())
        .collect();
    assert_eq!(
        resources,
        [
            "customresourcedefinitions",
            "mangodbs",
            "mangodbs/status",
            "secrets"
        ],
        "only accepted claims are granted"
    );

    // What the konnector's ServiceAccount may do, asked of the apiserver's RBAC authorizer.
    let may = |verb: &'static str,
               group: &'static str,
               resource: &'static str,
               ns: Option<&'static str>,
               name: Option<&'static str>| {
        let app = f.app.clone();
        async move { common::konnector_may(&app, verb, group, resource, ns, name).await }
    };
    assert!(
        may(
            "watch",
            "klutch.anynines.com",
            "apiservicebindings",
            None,
            None
        )
        .await
    );
    assert!(
        may(
            "patch",
            "klutch.anynines.com",
            "apiservicebindings/status",
            Some("klutch-bind"),
            None
        )
        .await
    );
    assert!(
        may(
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            None
        )
        .await
    );
    assert!(
        may(
            "patch",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            Some("mangodbs.mangodb.com")
        )
        .await
    );
    assert!(
        may(
            "patch",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            Some("apiservicebindings.klutch.anynines.com")
        )
        .await
    );
    assert!(
        !may(
            "patch",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            Some("widgets.example.com")
        )
        .await
    );
    assert!(may("update", "mangodb.com", "mangodbs", Some("default"), None).await);
    assert!(
        may(
            "patch",
            "mangodb.com",
            "mangodbs/status",
            Some("default"),
            None
        )
        .await
    );
    assert!(
        may("watch", "", "secrets", None, None).await,
        "accepted claim"
    );
    assert!(
        !may("list", "", "configmaps", Some("default"), None).await,
        "rejected claim"
    );
    assert!(may("update", "", "secrets", Some("klutch-bind"), None).await);
    assert!(
        may(
            "update",
            "coordination.k8s.io",
            "leases",
            Some("klutch-bind"),
            None
        )
        .await
    );
    assert!(
        !may(
            "update",
            "coordination.k8s.io",
            "leases",
            Some("default"),
            None
        )
        .await
    );
    assert!(may("watch", "", "namespaces", None, None).await);
    assert!(!may("delete", "", "namespaces", None, Some("default")).await);
    assert!(may("create", "events.k8s.io", "events", Some("default"), None).await);
    assert!(!may("create", "apps", "deployments", Some("default"), None).await);

    // Again, from the same provider: the binding is updated, the Secret reused, the konnector
    // left alone.
    let (io2, _, err) = io("v1.6.0", "");
    let code = kubectl_bind::run(apiservice_args(&f, &["--accept-claims=none"]), io2).await;
    assert_eq!(code, 0, "{}", err.contents());
    let stderr = err.contents();
    assert!(
        stderr.contains("✅ Updating existing APIServiceBinding mangodbs.mangodb.com."),
        "{stderr}"
    );
    assert!(!stderr.contains("Deploying konnector"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "🔒 Updated secret klutch-bind/{} for host 127.0.0.1, namespace cluster-apiservice",
            secrets[0]
        )),
        "{stderr}"
    );
    assert_eq!(common::kubeconfig_secrets(&f.app).await, secrets);
    // The first request still exists on the provider, so the second one got a generated name.
    let mut requests = common::provider_requests(&f).await;
    requests.sort();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0], "mangodbs.mangodb.com");
    assert!(
        requests[1].starts_with("mangodbs.mangodb.com-"),
        "{requests:?}"
    );
    // Decisions taken before are kept.
    let binding = bindings.get("mangodbs.mangodb.com").await.unwrap();
    assert_eq!(
        binding.spec.permission_claims[0].state,
        ClaimState::Accepted
    );
}

#[tokio::test]
async fn konnector_install_upgrade_skip_and_downgrade_on_a_real_cluster() {
    let f = fixture("cluster-konnector").await;
    let mut undo = kubectl_bind::undo::Undo::new(f.app.clone());
    let flags = kubectl_bind::konnector::Flags::default();
    let ensure = async |version: &str,
                        flags: &kubectl_bind::konnector::Flags,
                        undo: &mut kubectl_bind::undo::Undo| {
        let (mut io, _, err) = io(version, "");
        let result = kubectl_bind::konnector::ensure(&mut io, &f.app, flags, undo).await;
        (result, err.contents())
    };
    // A development build refuses to pick an image.
    let (result, _) = ensure("v0.0.0", &flags, &mut undo).await;
    assert_eq!(result.unwrap_err().exit_code(), 8);
    assert_eq!(common::konnector_image(&f.app).await, None);
    // Install, then upgrade numerically.
    let (result, stderr) = ensure("v1.9.0", &flags, &mut undo).await;
    result.unwrap();
    assert!(
        stderr.contains("🚀 Deploying konnector v1.9.0 to namespace klutch-bind."),
        "{stderr}"
    );
    assert!(!undo.is_empty(), "created objects are recorded");
    let (result, stderr) = ensure("v1.10.0", &flags, &mut undo).await;
    result.unwrap();
    assert!(
        stderr.contains("🚀 Updating konnector from v1.9.0 to v1.10.0."),
        "{stderr}"
    );
    assert_eq!(
        common::konnector_image(&f.app).await,
        Some(format!("{}:v1.10.0", default_repository()))
    );
    // Ours, and which version, on the Deployment itself.
    let labels = Api::<Deployment>::namespaced(f.app.clone(), "klutch-bind")
        .get("konnector")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert_eq!(labels["app.kubernetes.io/part-of"], "klutch-rs");
    assert_eq!(labels["app.kubernetes.io/version"], "v1.10.0");
    // An older CLI warns and leaves it, unless asked to downgrade.
    let (result, stderr) = ensure("v1.9.0", &flags, &mut undo).await;
    result.unwrap();
    assert!(stderr.contains("⚠️ Newer konnector v1.10.0 installed. To downgrade to v1.9.0 use --downgrade-konnector."), "{stderr}");
    assert_eq!(
        common::konnector_image(&f.app).await,
        Some(format!("{}:v1.10.0", default_repository()))
    );
    let downgrade = kubectl_bind::konnector::Flags {
        downgrade: true,
        ..Default::default()
    };
    ensure("v1.9.0", &downgrade, &mut undo).await.0.unwrap();
    assert_eq!(
        common::konnector_image(&f.app).await,
        Some(format!("{}:v1.9.0", default_repository()))
    );
    // --skip-konnector touches nothing; --konnector-image always applies.
    let skip = kubectl_bind::konnector::Flags {
        skip: true,
        ..Default::default()
    };
    let (result, stderr) = ensure("v2.0.0", &skip, &mut undo).await;
    result.unwrap();
    assert_eq!(stderr, "");
    let custom = kubectl_bind::konnector::Flags {
        image: Some("registry.local/konnector:dev".into()),
        ..Default::default()
    };
    ensure("v0.0.0", &custom, &mut undo).await.0.unwrap();
    assert_eq!(
        common::konnector_image(&f.app).await.as_deref(),
        Some("registry.local/konnector:dev")
    );
    // A custom image installed by us has no version: later CLIs leave it alone.
    let (_, stderr) = ensure("v3.0.0", &flags, &mut undo).await;
    assert!(
        stderr.contains("ℹ️ Found klutch's konnector registry.local/konnector:dev of unknown (dev) version; leaving it alone."),
        "{stderr}"
    );
    // Klutch's Go konnector (as its own installer leaves it: no labels of ours) is neither
    // upgraded nor downgraded, and the message says what was found.
    let deployments: Api<Deployment> = Api::namespaced(f.app.clone(), "klutch-bind");
    let go_image = format!("{KLUTCH_GO_REPOSITORY}:v1.5.0");
    deployments
        .patch(
            "konnector",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(serde_json::json!([
                {"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1part-of"},
                {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": go_image},
            ])).unwrap()),
        )
        .await
        .unwrap();
    for flags in [&flags, &downgrade] {
        for version in ["v1.4.0", "v1.6.0"] {
            let (result, stderr) = ensure(version, flags, &mut undo).await;
            result.unwrap();
            assert!(
                stderr.contains(&format!("ℹ️ Found Klutch's Go konnector ({go_image}) in namespace klutch-bind; leaving it alone.")),
                "{stderr}"
            );
            assert_eq!(
                common::konnector_image(&f.app).await,
                Some(go_image.clone())
            );
        }
    }
    // The recorded objects can be removed again.
    let (mut io, _, _) = io("v1.0.0", "");
    undo.rollback(&mut io).await;
    assert_eq!(common::konnector_image(&f.app).await, None);
}

#[tokio::test]
async fn a_failed_export_request_leaves_the_clusters_as_they_were() {
    let f = fixture("cluster-failed").await;
    let _backend = backend_controller(
        f.provider.clone(),
        &f.cluster_ns,
        Verdict::Fail("no template for mangodbs.mangodb.com".into()),
    );
    let (io, _, err) = io("v1.6.0", "");
    let code = kubectl_bind::run(apiservice_args(&f, &["--accept-claims=all"]), io).await;
    assert_eq!(code, 5, "{}", err.contents());
    insta::with_settings!({filters => common::filters()}, {
        insta::assert_snapshot!("failed_request_stderr", err.contents());
    });
    assert!(
        !common::consumer_namespace_exists(&f.app).await,
        "klutch-bind was created by this run and removed"
    );
    assert!(
        common::provider_requests(&f).await.is_empty(),
        "the request was removed"
    );
    assert_eq!(common::konnector_image(&f.app).await, None);
}

#[tokio::test]
async fn ctrl_c_while_waiting_leaves_the_clusters_as_they_were() {
    let f = fixture("cluster-interrupt").await;
    let _backend = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Ignore);
    let (io, _, err) = io("v1.6.0", "");
    let cancel = io.cancel.clone();
    let run = tokio::spawn(kubectl_bind::run(
        apiservice_args(&f, &["--accept-claims=all"]),
        io,
    ));
    common::wait_for("the request on the provider", || async {
        !common::provider_requests(&f).await.is_empty()
    })
    .await;
    cancel.cancel();
    let code = run.await.unwrap();
    assert_eq!(code, 130, "{}", err.contents());
    assert!(
        err.contents()
            .contains("interrupted; the cluster was left as it was")
    );
    assert!(!common::consumer_namespace_exists(&f.app).await);
    assert!(common::provider_requests(&f).await.is_empty());
}

#[tokio::test]
async fn a_pending_request_times_out_with_a_clear_message() {
    let f = fixture("cluster-timeout").await;
    let _backend = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Ignore);
    let (io, _, err) = io("v1.6.0", "");
    let code = kubectl_bind::run(
        apiservice_args(&f, &["--accept-claims=all", "--timeout=2s"]),
        io,
    )
    .await;
    assert_eq!(code, 5, "{}", err.contents());
    assert!(
        err.contents().contains(
            "timed out after 2s waiting for APIServiceExportRequest mangodbs.mangodb.com"
        )
    );
    assert!(!common::consumer_namespace_exists(&f.app).await);
}

#[tokio::test]
async fn conflicts_and_missing_consent_are_found_before_anything_is_written() {
    let f = fixture("cluster-conflicts").await;
    let _backend = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Succeed);

    // No terminal and no --accept-claims.
    let (io1, _, err) = io("v1.6.0", "");
    assert_eq!(
        kubectl_bind::run(apiservice_args(&f, &[]), io1).await,
        7,
        "{}",
        err.contents()
    );
    assert!(err.contents().contains("--accept-claims"));
    // A required claim declined.
    let (io1, _, err) = io("v1.6.0", "");
    let required = REQUEST.replace(
        "selector: {owner: Provider}}\n    - {resource: configmaps",
        "required: true, selector: {owner: Provider}}\n    - {resource: configmaps",
    );
    let path = write(&f, "required.yaml", required.as_bytes());
    let mut args = apiservice_args(&f, &["--accept-claims=configmaps"]);
    args[3] = path;
    assert_eq!(kubectl_bind::run(args, io1).await, 7, "{}", err.contents());
    assert!(!common::consumer_namespace_exists(&f.app).await);
    assert!(common::provider_requests(&f).await.is_empty());

    // An existing binding from another provider.
    let (mut setup, _, _) = io("v1.6.0", "");
    let mut undo = kubectl_bind::undo::Undo::new(f.app.clone());
    kubectl_bind::namespace::ensure_namespace(&mut setup, &f.app, &mut undo)
        .await
        .unwrap();
    let other = String::from_utf8(f.provider_kubeconfig.clone())
        .unwrap()
        .replace(&f.cluster_ns, "cluster-someone-else");
    let stored = kubectl_bind::secret::ensure(&mut setup, &f.app, other.as_bytes(), &mut undo)
        .await
        .unwrap();
    let foreign: APIServiceBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "klutch.anynines.com/v1alpha1", "kind": "APIServiceBinding",
        "metadata": {"name": "mangodbs.mangodb.com", "namespace": "klutch-bind"},
        "spec": {"kubeconfigSecretRef": {"name": stored.name, "namespace": "klutch-bind", "key": "kubeconfig"}}
    }))
    .unwrap();
    let bindings: Api<APIServiceBinding> = Api::namespaced(f.app.clone(), "klutch-bind");
    bindings
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let (io1, _, err) = io("v1.6.0", "");
    assert_eq!(
        kubectl_bind::run(apiservice_args(&f, &["--accept-claims=all"]), io1).await,
        6
    );
    insta::assert_snapshot!("foreign_binding_stderr", err.contents());
    assert!(common::provider_requests(&f).await.is_empty());
    assert_eq!(
        common::kubeconfig_secrets(&f.app).await,
        vec![stored.name.clone()],
        "no Secret added"
    );
    bindings
        .delete("mangodbs.mangodb.com", &Default::default())
        .await
        .unwrap();

    // A CRD of that name that no binding owns.
    let crd = klutch_sdk::testenv::fixtures::TestCrd::mangodb()
        .version("v1")
        .build();
    klutch_sdk::testenv::install_crd(&f.app, &crd)
        .await
        .unwrap();
    let (io1, _, err) = io("v1.6.0", "");
    assert_eq!(
        kubectl_bind::run(apiservice_args(&f, &["--accept-claims=all"]), io1).await,
        6
    );
    assert!(
        err.contents().contains(
            "CustomResourceDefinition mangodbs.mangodb.com exists, but is not owned by klutch-bind"
        ),
        "{}",
        err.contents()
    );
    assert!(common::provider_requests(&f).await.is_empty());
    assert_eq!(common::konnector_image(&f.app).await, None);
}

#[tokio::test]
async fn apiservice_reads_the_kubeconfig_from_a_secret_and_the_manifest_from_stdin() {
    let f = fixture("cluster-stdin").await;
    let _backend = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Succeed);
    let (mut setup, _, _) = io("v1.6.0", "");
    let mut undo = kubectl_bind::undo::Undo::new(f.app.clone());
    kubectl_bind::namespace::ensure_namespace(&mut setup, &f.app, &mut undo)
        .await
        .unwrap();
    let stored =
        kubectl_bind::secret::ensure(&mut setup, &f.app, &f.provider_kubeconfig, &mut undo)
            .await
            .unwrap();
    assert!(stored.created);
    let (io1, out, err) = io("v1.6.0", REQUEST);
    let args = [
        "kubectl-bind",
        "apiservice",
        "-f",
        "-",
        "--remote-kubeconfig-namespace",
        "klutch-bind",
        "--remote-kubeconfig-name",
        &stored.name,
        "--kubeconfig",
        f.app_kubeconfig.to_str().unwrap(),
        "--accept-claims=all",
        "--skip-konnector",
    ];
    assert_eq!(kubectl_bind::run(args, io1).await, 0, "{}", err.contents());
    assert!(out.contents().contains("mangodbs.mangodb.com"));
    assert_eq!(
        common::kubeconfig_secrets(&f.app).await,
        vec![stored.name.clone()],
        "the Secret is used as is"
    );
    assert_eq!(
        common::konnector_image(&f.app).await,
        None,
        "--skip-konnector"
    );
    let binding = Api::<APIServiceBinding>::namespaced(f.app.clone(), "klutch-bind")
        .get("mangodbs.mangodb.com")
        .await
        .unwrap();
    assert_eq!(binding.spec.kubeconfig_secret_ref.name, stored.name);

    // --dry-run prints the request and writes nothing.
    let (io1, out, _) = io("v1.6.0", REQUEST);
    let args = [
        "kubectl-bind",
        "apiservice",
        "-f",
        "-",
        "--dry-run",
        "-o",
        "json",
        "--kubeconfig",
        f.app_kubeconfig.to_str().unwrap(),
    ];
    assert_eq!(kubectl_bind::run(args, io1).await, 0);
    let printed: serde_json::Value = serde_json::from_str(&out.contents()).unwrap();
    assert_eq!(printed["metadata"]["name"], "mangodbs.mangodb.com");
}

#[tokio::test]
async fn a_development_build_refuses_to_install_the_konnector_and_rolls_back() {
    let f = fixture("cluster-devbuild").await;
    let _backend = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Succeed);
    let (io1, _, err) = io("v0.0.0", "");
    let code = kubectl_bind::run(apiservice_args(&f, &["--accept-claims=all"]), io1).await;
    assert_eq!(code, 8, "{}", err.contents());
    assert!(
        err.contents().contains("--konnector-image"),
        "{}",
        err.contents()
    );
    assert!(!common::consumer_namespace_exists(&f.app).await);
    assert!(common::provider_requests(&f).await.is_empty());
}

#[tokio::test]
async fn the_binding_waits_until_the_konnector_installed_the_binding_crd() {
    let f = fixture("cluster-konnector-wait").await;
    let _backend = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Succeed);
    // No konnector runs here: remove the APIServiceBinding CRD, then install it (as the
    // konnector would) once the CLI waits for it.
    let crds: Api<CustomResourceDefinition> = Api::all(f.app.clone());
    let binding_crd = "apiservicebindings.klutch.anynines.com";
    crds.delete(binding_crd, &Default::default()).await.unwrap();
    common::wait_for("the binding CRD to be gone", || async {
        crds.get_opt(binding_crd).await.unwrap().is_none()
    })
    .await;
    let (io1, _, err) = io("v1.6.0", "");
    let run = tokio::spawn(kubectl_bind::run(
        apiservice_args(&f, &["--accept-claims=all"]),
        io1,
    ));
    common::wait_for("the CLI to wait for the konnector", || async {
        let text = err.contents();
        assert!(!run.is_finished(), "the CLI ended early: {text}");
        text.contains("Waiting for the konnector to be ready")
    })
    .await;
    let crd = klutch_sdk::api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "APIServiceBinding")
        .unwrap();
    klutch_sdk::testenv::install_crd(&f.app, &crd)
        .await
        .unwrap();
    assert_eq!(run.await.unwrap(), 0, "{}", err.contents());
    assert!(
        err.contents()
            .contains("✅ Created APIServiceBinding mangodbs.mangodb.com")
    );
}

#[tokio::test]
async fn kubectl_connection_flags_select_the_cluster() {
    let f = fixture("cluster-flags").await;
    let _backend = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Succeed);
    // A kubeconfig whose current context points nowhere, fixed by --server, --token and
    // --certificate-authority, as kubectl users would.
    let admin = f.env["app"].admin().kubeconfig();
    let token = {
        use secrecy::ExposeSecret as _;
        admin.auth_infos[0]
            .auth_info
            .as_ref()
            .unwrap()
            .token
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_string()
    };
    let ca = write(&f, "ca.crt", f.env["app"].ca_pem().as_bytes());
    let broken = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: https://127.0.0.1:1}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: wrong}\ncurrent-context: x\n";
    let broken = write(&f, "broken.kubeconfig", broken.as_bytes());
    let mut args = apiservice_args(
        &f,
        &[
            "--accept-claims=all",
            "--skip-konnector",
            "--server",
            f.env["app"].url(),
            "--token",
            &token,
            "--certificate-authority",
            &ca,
            "-v",
            "4",
        ],
    );
    let at = args.iter().position(|a| a == "--kubeconfig").unwrap();
    args[at + 1] = broken;
    let (io1, out, err) = io("v1.6.0", "");
    assert_eq!(kubectl_bind::run(args, io1).await, 0, "{}", err.contents());
    assert!(out.contents().contains("mangodbs.mangodb.com"));
    // An unknown --context is a clear error.
    let mut args = apiservice_args(&f, &["--accept-claims=all", "--context", "nope"]);
    args.push("--skip-konnector".into());
    let (io1, _, err) = io("v1.6.0", "");
    assert_eq!(kubectl_bind::run(args, io1).await, 1);
    assert!(
        err.contents().contains("context \"nope\" not found"),
        "{}",
        err.contents()
    );
}

#[tokio::test]
async fn waiting_survives_a_provider_apiserver_restart() {
    let f = fixture("cluster-restart").await;
    // Its own provider cluster: the shared one must not be restarted.
    let env = klutch_sdk::testenv::TestEnv::builder()
        .cluster("provider")
        .controller_manager(false)
        .start()
        .await
        .unwrap();
    let provider = env["provider"].client().await.unwrap();
    for crd in klutch_sdk::api::crds() {
        klutch_sdk::testenv::install_crd(&provider, &crd)
            .await
            .unwrap();
    }
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "cluster-r"}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(provider.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let mut kubeconfig = env["provider"].admin().kubeconfig();
    for context in &mut kubeconfig.contexts {
        if let Some(c) = context.context.as_mut() {
            c.namespace = Some("cluster-r".into());
        }
    }
    let remote = write(
        &f,
        "restart.kubeconfig",
        serde_saphyr::to_string(&kubeconfig).unwrap().as_bytes(),
    );
    let mut args = apiservice_args(&f, &["--accept-claims=all", "--skip-konnector"]);
    let at = args
        .iter()
        .position(|a| a == "--remote-kubeconfig")
        .unwrap();
    args[at + 1] = remote;

    let (io1, _, err) = io("v1.6.0", "");
    let run = tokio::spawn(kubectl_bind::run(args, io1));
    let requests: Api<klutch_sdk::api::APIServiceExportRequest> =
        Api::namespaced(provider.clone(), "cluster-r");
    common::wait_for("the request on the provider", || async {
        requests
            .list(&Default::default())
            .await
            .is_ok_and(|l| !l.items.is_empty())
    })
    .await;
    // Down for several poll intervals, then back on the same port with the same data.
    env["provider"].stop().await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert!(!run.is_finished(), "{}", err.contents());
    env["provider"].start().await.unwrap();
    let provider = env["provider"].client().await.unwrap();
    let _backend = backend_controller(provider, "cluster-r", Verdict::Succeed);
    assert_eq!(run.await.unwrap(), 0, "{}", err.contents());
    assert!(
        err.contents()
            .contains("✅ Created APIServiceBinding mangodbs.mangodb.com")
    );
}

#[tokio::test]
async fn consent_is_asked_on_the_terminal_and_stored() {
    let f = fixture("cluster-consent").await;
    let _backend = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Succeed);
    // "maybe" is asked again; then yes to secrets, no to configmaps.
    let (mut io1, out, err) = io("v1.6.0", "maybe\nyes\nNO\n");
    io1.interactive = true;
    let code = kubectl_bind::run(apiservice_args(&f, &["--skip-konnector"]), io1).await;
    assert_eq!(code, 0, "{}", err.contents());
    insta::with_settings!({filters => common::filters()}, {
        insta::assert_snapshot!("consent_stdout", out.contents());
    });
    let binding = Api::<APIServiceBinding>::namespaced(f.app.clone(), "klutch-bind")
        .get("mangodbs.mangodb.com")
        .await
        .unwrap();
    let states: Vec<ClaimState> = binding
        .spec
        .permission_claims
        .iter()
        .map(|c| c.state)
        .collect();
    assert_eq!(states, [ClaimState::Accepted, ClaimState::Rejected]);
}

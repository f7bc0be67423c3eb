//! The test environment against the real binaries: isolation, RBAC, CRDs, the controllers that
//! kube-controller-manager runs, restarts, Dex, and teardown.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use klutch_sdk::testenv::{Binaries, DexConfig, DexUser, Error, TestEnv};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt as _, watcher};

const WAIT: Duration = Duration::from_secs(60);

/// A ConfigMap labelled `test=klutch`, so watches can ignore the ones the controllers create.
fn config_map(name: &str, data: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("test".to_string(), "klutch".to_string())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("value".to_string(), data.to_string())])),
        ..ConfigMap::default()
    }
}

/// A namespace with a unique name, so tests can share the environment.
async fn namespace(client: &kube::Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", std::process::id() % 100_000);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

#[tokio::test]
async fn two_clusters_are_isolated_and_support_crud_and_watch() {
    let env = TestEnv::shared()
        .await
        .expect("start the shared environment");
    let a = env["control-plane"].client().await.unwrap();
    let b = env["app"].client().await.unwrap();
    let ns_a = namespace(&a, "crud").await;
    let ns_b = namespace(&b, "crud").await;
    let cms_a: Api<ConfigMap> = Api::namespaced(a.clone(), &ns_a);
    let cms_b: Api<ConfigMap> = Api::namespaced(b.clone(), &ns_b);

    // Watch both clusters at once.
    let labelled = || watcher::Config::default().labels("test=klutch");
    let mut watch_a = watcher(cms_a.clone(), labelled())
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut watch_b = watcher(cms_b.clone(), labelled())
        .default_backoff()
        .applied_objects()
        .boxed();

    cms_a
        .create(&PostParams::default(), &config_map("only-in-a", "1"))
        .await
        .unwrap();
    cms_b
        .create(&PostParams::default(), &config_map("only-in-b", "2"))
        .await
        .unwrap();

    let seen_a = tokio::time::timeout(WAIT, watch_a.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let seen_b = tokio::time::timeout(WAIT, watch_b.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(seen_a.metadata.name.as_deref(), Some("only-in-a"));
    assert_eq!(seen_b.metadata.name.as_deref(), Some("only-in-b"));

    // Isolation: each object exists only where it was made; B does not even have A's namespace.
    assert!(cms_a.get_opt("only-in-b").await.unwrap().is_none());
    assert!(
        Api::<ConfigMap>::namespaced(b.clone(), &ns_a)
            .get_opt("only-in-a")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<Namespace>::all(b.clone())
            .get_opt(&ns_a)
            .await
            .unwrap()
            .is_none()
            || ns_a == ns_b
    );

    // Update and delete round-trip.
    let mut cm = cms_a.get("only-in-a").await.unwrap();
    cm.data = Some(BTreeMap::from([(
        "value".to_string(),
        "changed".to_string(),
    )]));
    cms_a
        .replace("only-in-a", &PostParams::default(), &cm)
        .await
        .unwrap();
    assert_eq!(
        cms_a.get("only-in-a").await.unwrap().data.unwrap()["value"],
        "changed"
    );
    cms_a
        .delete("only-in-a", &DeleteParams::default())
        .await
        .unwrap();
    assert!(cms_a.get_opt("only-in-a").await.unwrap().is_none());
}

#[tokio::test]
async fn restricted_identity_is_denied_until_rbac_allows_it() {
    let env = TestEnv::shared()
        .await
        .expect("start the shared environment");
    let cluster = &env["control-plane"];
    let admin = cluster.client().await.unwrap();
    let ns = namespace(&admin, "rbac").await;

    let alice = cluster.identity("alice", &["team-a"]).unwrap();
    let as_alice: Api<ConfigMap> = Api::namespaced(alice.client().await.unwrap(), &ns);
    let err = as_alice
        .list(&Default::default())
        .await
        .expect_err("alice has no permissions yet");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err:?}"
    );

    // Grant the group read access to ConfigMaps in this namespace only.
    let role = Role {
        metadata: ObjectMeta {
            name: Some("read-cm".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into(), "list".into()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("team-a-read-cm".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "read-cm".into(),
        },
        subjects: Some(vec![Subject {
            kind: "Group".into(),
            name: "team-a".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // RBAC is evaluated per request: reading works now, writing still does not.
    as_alice
        .list(&Default::default())
        .await
        .expect("alice may list configmaps now");
    let err = as_alice
        .create(&PostParams::default(), &config_map("x", "y"))
        .await
        .expect_err("no create permission");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "{err:?}"
    );

    // The apiserver sees the certificate's CN and O as user and group.
    let review = Api::<SelfSubjectReview>::all(alice.client().await.unwrap())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = review.status.unwrap().user_info.unwrap();
    assert_eq!(user.username.as_deref(), Some("alice"));
    assert!(user.groups.unwrap().contains(&"team-a".to_string()));

    // The identity is worthless on another cluster: that cluster has its own client CA.
    let elsewhere = Api::<ConfigMap>::namespaced(
        env["app"]
            .identity("alice", &["team-a"])
            .unwrap()
            .client()
            .await
            .unwrap(),
        "default",
    );
    assert!(
        matches!(elsewhere.list(&Default::default()).await, Err(kube::Error::Api(s)) if s.code == 403)
    );
}

#[tokio::test]
async fn crd_installs_and_becomes_established() {
    let env = TestEnv::shared()
        .await
        .expect("start the shared environment");
    let client = env["app"].client().await.unwrap();
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.testenv.klutch.anynines.com" },
        "spec": {
            "group": "testenv.klutch.anynines.com",
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "properties": {
                    "spec": { "type": "object", "properties": { "size": { "type": "integer" } } }
                } } }
            }]
        }
    }))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(
            crds,
            "widgets.testenv.klutch.anynines.com",
            conditions::is_crd_established(),
        ),
    )
    .await
    .expect("established in time")
    .unwrap();

    // The new API serves objects, and validates them against the schema.
    let ns = namespace(&client, "crd").await;
    let ar = kube::api::ApiResource {
        group: "testenv.klutch.anynines.com".into(),
        version: "v1".into(),
        api_version: "testenv.klutch.anynines.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<kube::api::DynamicObject> = Api::namespaced_with(client, &ns, &ar);
    let mut ok = kube::api::DynamicObject::new("w", &ar);
    ok.data = serde_json::json!({ "spec": { "size": 3 } });
    widgets.create(&PostParams::default(), &ok).await.unwrap();
    let mut bad = kube::api::DynamicObject::new("bad", &ar);
    bad.data = serde_json::json!({ "spec": { "size": "three" } });
    let err = widgets
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("schema rejects a string size");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422),
        "{err:?}"
    );
}

#[tokio::test]
async fn namespace_deletion_completes_and_owner_references_cascade() {
    let env = TestEnv::shared()
        .await
        .expect("start the shared environment");
    let client = env["control-plane"].client().await.unwrap();

    // Garbage collection: deleting the owner deletes the dependent.
    let ns = namespace(&client, "gc").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let owner = cms
        .create(&PostParams::default(), &config_map("owner", "o"))
        .await
        .unwrap();
    let mut dependent = config_map("dependent", "d");
    dependent.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "owner".into(),
        uid: owner.metadata.uid.clone().unwrap(),
        ..OwnerReference::default()
    }]);
    let dependent = cms
        .create(&PostParams::default(), &dependent)
        .await
        .unwrap();
    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(
            cms.clone(),
            "dependent",
            conditions::is_deleted(&dependent.metadata.uid.unwrap()),
        ),
    )
    .await
    .expect("garbage collector deletes the dependent")
    .unwrap();

    // Namespace deletion: the namespace controller empties and removes it.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let uid = namespaces.get(&ns).await.unwrap().metadata.uid.unwrap();
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(namespaces, &ns, conditions::is_deleted(&uid)),
    )
    .await
    .expect("namespace deletion completes")
    .unwrap();
}

#[tokio::test]
async fn service_account_tokens_work() {
    let env = TestEnv::shared()
        .await
        .expect("start the shared environment");
    let cluster = &env["app"];
    let admin = cluster.client().await.unwrap();
    let ns = namespace(&admin, "sa").await;

    // The ServiceAccount controller creates `default` in every new namespace.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    tokio::time::timeout(
        WAIT,
        await_condition(sas.clone(), "default", conditions::is_created()),
    )
    .await
    .expect("default ServiceAccount appears")
    .unwrap();
    // The root-CA publisher gives every namespace the cluster CA.
    let ca = tokio::time::timeout(
        WAIT,
        await_condition(
            Api::<ConfigMap>::namespaced(admin.clone(), &ns),
            "kube-root-ca.crt",
            conditions::is_created(),
        ),
    )
    .await
    .expect("kube-root-ca.crt appears")
    .unwrap()
    .unwrap();
    assert_eq!(ca.data.unwrap()["ca.crt"], cluster.ca_pem());

    // A TokenRequest token authenticates as the ServiceAccount.
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let token = sas
        .create_subresource::<_, TokenRequest>("token", "default", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let identity = cluster.token_identity("default-sa", token.expect("a token").into());
    let review = Api::<SelfSubjectReview>::all(identity.client().await.unwrap())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    assert_eq!(
        review
            .status
            .unwrap()
            .user_info
            .unwrap()
            .username
            .as_deref(),
        Some(format!("system:serviceaccount:{ns}:default").as_str())
    );
}

#[tokio::test]
async fn kubectl_works_with_the_written_kubeconfig() {
    let env = TestEnv::shared()
        .await
        .expect("start the shared environment");
    let kubectl = Binaries::find().unwrap().kubectl().unwrap();
    let out = std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(env["app"].kubeconfig_path())
        .args([
            "get",
            "namespace",
            "kube-system",
            "-o",
            "jsonpath={.metadata.name}",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kube-system");
    let version = std::process::Command::new(Binaries::find().unwrap().kubectl().unwrap())
        .arg("--kubeconfig")
        .arg(env["app"].kubeconfig_path())
        .args(["version", "-o", "json"])
        .output()
        .unwrap();
    let version: serde_json::Value = serde_json::from_slice(&version.stdout).unwrap();
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.36.3");
}

#[tokio::test]
async fn watch_survives_an_apiserver_restart_and_data_persists() {
    let env = TestEnv::builder()
        .cluster("restart")
        .start()
        .await
        .expect("start");
    let cluster = &env["restart"];
    let url = cluster.url().to_owned();
    let client = cluster.client().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut events = watcher(
        cms.clone(),
        watcher::Config::default().labels("test=klutch"),
    )
    .default_backoff()
    .applied_objects()
    .boxed();
    cms.create(&PostParams::default(), &config_map("before", "1"))
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, events.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("before"));

    // A crash: the watch connection breaks.
    cluster.kill_apiserver();
    assert!(!cluster.is_running());
    assert!(
        cms.get_opt("before").await.is_err(),
        "the apiserver is down"
    );
    cluster.start().await.expect("restart in place");
    assert_eq!(cluster.url(), url, "same port");

    // Same data, and the same client and watch keep working.
    assert!(cms.get_opt("before").await.unwrap().is_some());
    cms.create(&PostParams::default(), &config_map("after", "2"))
        .await
        .unwrap();
    let next = tokio::time::timeout(WAIT, async {
        loop {
            let cm = events.try_next().await.unwrap().unwrap();
            if cm.metadata.name.as_deref() == Some("after") {
                return cm;
            }
        }
    })
    .await
    .expect("the watch resumes and sees the new object");
    assert_eq!(next.data.unwrap()["value"], "2");

    // A graceful stop and start works as well.
    cluster.restart().await.expect("graceful restart");
    assert_eq!(cms.get("after").await.unwrap().data.unwrap()["value"], "2");

    // A crash of the whole control plane: the apiserver and etcd killed with SIGKILL, both
    // started again on the same data and ports.
    cluster.kill_apiserver();
    env.kill_etcd();
    assert!(!env.pids().is_empty(), "the controller manager still runs");
    let etcd_url = env.etcd_url().to_owned();
    env.start_etcd().await.expect("start etcd again");
    assert_eq!(env.etcd_url(), etcd_url, "same etcd port");
    cluster.start().await.expect("start the apiserver again");
    assert_eq!(cms.get("before").await.unwrap().data.unwrap()["value"], "1");
    assert_eq!(cms.get("after").await.unwrap().data.unwrap()["value"], "2");
}

#[tokio::test]
async fn dex_issues_real_id_tokens() {
    let mut config = DexConfig::default();
    config.users.push(DexUser::new("dev@example.com", "s3cret"));
    let env = TestEnv::builder()
        .cluster("oidc")
        .controller_manager(false)
        .dex(config)
        .start()
        .await
        .expect("start");
    let dex = env.dex().expect("dex runs");

    let discovery: serde_json::Value = reqwest_get_json(&format!(
        "{}/.well-known/openid-configuration",
        dex.issuer()
    ))
    .await;
    assert_eq!(discovery["issuer"], dex.issuer());
    assert!(
        discovery["device_authorization_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/device/code")
    );

    let tokens = dex
        .password_grant("klutch-backend", "dev@example.com", "s3cret")
        .await
        .expect("login");
    let claims = tokens.id_token_claims().unwrap();
    assert_eq!(claims["iss"], dex.issuer());
    assert_eq!(claims["email"], "dev@example.com");
    assert_eq!(claims["aud"], "klutch-backend");
    assert!(
        tokens.refresh_token.is_some(),
        "offline_access gives a refresh token"
    );

    let err = dex
        .password_grant("klutch-backend", "dev@example.com", "wrong")
        .await
        .expect_err("bad password");
    assert!(
        matches!(err, Error::HttpStatus { status: 401, .. }),
        "{err}"
    );
    let err = dex
        .password_grant("nobody", "dev@example.com", "s3cret")
        .await
        .expect_err("unknown client");
    assert!(err.to_string().contains("no client nobody"), "{err}");
}

async fn reqwest_get_json(url: &str) -> serde_json::Value {
    let resp = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().await.unwrap()
}

fn alive(pgid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pgid}")).exists()
}

#[tokio::test]
async fn drop_leaves_no_process_port_or_directory() {
    let env = TestEnv::builder()
        .cluster("one")
        .cluster("two")
        .dex(DexConfig::default())
        .start()
        .await
        .expect("start");
    let pids = env.pids();
    assert_eq!(
        pids.len(),
        1 + 2 * 2 + 1,
        "etcd, two apiservers, two controller managers, dex: {pids:?}"
    );
    let dir = env.dir().to_owned();
    let port: u16 = env["one"]
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(dir.exists());
    drop(env);
    for pid in pids {
        assert!(!alive(pid), "process group {pid} is gone");
    }
    assert!(!dir.exists(), "{} is removed", dir.display());
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the apiserver port is free again");
}

#[tokio::test]
async fn a_panicking_test_still_cleans_up() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let outcome = tokio::spawn(async move {
        let env = TestEnv::builder()
            .cluster("doomed")
            .controller_manager(false)
            .start()
            .await
            .expect("start");
        tx.send((env.pids(), env.dir().to_owned())).unwrap();
        panic!("the test failed");
    })
    .await;
    assert!(outcome.expect_err("the task panicked").is_panic());
    let (pids, dir) = rx.await.unwrap();
    for pid in pids {
        assert!(!alive(pid), "process group {pid} is gone");
    }
    assert!(!dir.exists());
}

#[tokio::test]
async fn missing_binaries_and_bad_names_give_clear_errors() {
    let err = TestEnv::builder()
        .binaries(Binaries::from_dir("/nonexistent/klutch-bins"))
        .start()
        .await
        .expect_err("no binaries there");
    let message = err.to_string();
    assert!(
        matches!(err, Error::BinaryMissing { name: "etcd", .. }),
        "{message}"
    );
    assert!(
        message.contains("testbins/build.sh") && message.contains("KLUTCH_TESTBIN_DIR"),
        "{message}"
    );

    let err = TestEnv::builder()
        .cluster("Bad_Name")
        .start()
        .await
        .expect_err("invalid name");
    assert!(
        err.to_string().contains("\"Bad_Name\" is not a DNS label"),
        "{err}"
    );
    let err = TestEnv::builder()
        .cluster("a")
        .cluster("a")
        .start()
        .await
        .expect_err("duplicate");
    assert!(err.to_string().contains("used twice"), "{err}");
}

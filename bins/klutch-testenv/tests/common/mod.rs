//! What the journey test targets share: waits with Crossplane's log tails on failure, claims
//! by kind, namespaces, Ready conditions and app-cluster Secrets.

// Each test target uses a subset.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use klutch_a9s::claims::package::examples;
use klutch_testenv::journey::{Journey, claim_resource};
use kube::api::{Api, DynamicObject, ObjectMeta, PostParams};
use serde_json::{Value, json};

/// Crypto provider and test logging (`TEST_LOG`, default info).
pub fn init() {
    klutch_sdk::tls::install_crypto_provider();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
                .unwrap_or_else(|_| "info,kube=warn,klutch_sdk::konnector=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// How long one hop of the journey may take.
pub const WAIT: Duration = Duration::from_secs(120);

/// Polls `probe` until it returns `Some`; on timeout panics with Crossplane's log tails.
pub async fn eventually<T, F, Fut>(journey: &Journey, what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    match klutch_sdk::testenv::eventually(what, WAIT, probe).await {
        Ok(v) => v,
        Err(e) => panic!("{e}\n{}", journey.log_tails(40)),
    }
}

pub async fn create_namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// The claims API of `claim`'s kind in namespace `ns` of `client`.
pub fn claims_api(client: &kube::Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let resource = claim_resource(kind).unwrap_or_else(|| panic!("no claim kind {kind}"));
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// Creates `claim` (a package example document) in namespace `ns` of the app cluster, renamed
/// to `name` (and its `instanceRef`/`backupRef` to `refs`, when given).
pub async fn create_claim(app: &kube::Client, ns: &str, mut claim: Value) -> DynamicObject {
    claim["metadata"]["namespace"] = json!(ns);
    let kind = claim["kind"].as_str().unwrap().to_owned();
    let obj: DynamicObject = serde_json::from_value(claim).unwrap();
    claims_api(app, ns, &kind)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {kind} {ns}/{:?}: {e}", obj.metadata.name))
}

/// The condition `type_` of an object with `status.conditions`, as (status, reason, message).
pub fn condition(obj: &DynamicObject, type_: &str) -> Option<(String, String, String)> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (s("status"), s("reason"), s("message"))
        })
}

/// Waits until app-cluster claim `ns/name` of `kind` is Ready=True; returns it.
pub async fn ready_claim(journey: &Journey, ns: &str, kind: &str, name: &str) -> DynamicObject {
    let api = claims_api(&journey.app().await.unwrap(), ns, kind);
    eventually(
        journey,
        &format!("{kind} {ns}/{name} Ready=True in the app cluster"),
        || async {
            let obj = api.get(name).await.ok()?;
            (condition(&obj, "Ready")?.0 == "True").then_some(obj)
        },
    )
    .await
}

/// The a9s example claims of the package for data service `kind` (instance first), without the
/// a8s ones.
pub fn example(file: &str) -> Vec<Value> {
    examples()
        .into_iter()
        .find(|(f, _)| *f == file)
        .unwrap_or_else(|| panic!("no example {file}"))
        .1
}

/// Waits until Secret `ns/name` is in the app cluster; returns its keys.
pub async fn app_secret_keys(journey: &Journey, ns: &str, name: &str) -> BTreeSet<String> {
    let secrets: Api<Secret> = Api::namespaced(journey.app().await.unwrap(), ns);
    eventually(
        journey,
        &format!("Secret {ns}/{name} in the app cluster"),
        || async {
            let s = secrets.get_opt(name).await.ok()??;
            let keys: BTreeSet<String> = s.data?.into_keys().collect();
            (!keys.is_empty()).then_some(keys)
        },
    )
    .await
}

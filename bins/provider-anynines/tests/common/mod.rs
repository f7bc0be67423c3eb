//! The harness of the integration tests: one real kube-apiserver per test binary (from
//! `klutch_sdk::testenv`), the provider's CRDs, in-process fake brokers and Backup Managers,
//! and a provider started as a task that a test can stop and start again ("restart").
//! Each test labels its managed resources with its own run id and its provider only watches
//! that label, so tests run in parallel on the shared apiserver.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use klutch_a9s::provider::Options;
use klutch_a9s::provider::api::provider_config::{CredentialSelectors, ProviderCredentials};
use klutch_a9s::provider::api::{
    CredentialsSource, ProviderConfig, ProviderConfigSpec, SecretKeySelector, ServiceType,
};
use klutch_a9s::provider::metrics::Metrics;
use klutch_a9s::testing::{
    FakeA9sBroker, FakeA9sBrokerConfig, FakeBackupManager, FakeBackupManagerConfig,
};
use klutch_osb::testing::{FakeBrokerConfig, Mode};
use klutch_sdk::crossplane::Managed;
use klutch_sdk::crossplane::conditions;
use klutch_sdk::testenv::TestEnv;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use tokio::sync::{OnceCell, oneshot};

/// How long any wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(90);
/// The label that scopes a test's objects.
pub const RUN_LABEL: &str = "klutch.test/run";

static ENV: OnceCell<TestEnv> = OnceCell::const_new();

/// The shared environment with the CRDs installed.
pub async fn env() -> &'static TestEnv {
    ENV.get_or_init(|| async {
        klutch_sdk::tls::install_crypto_provider();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let env = TestEnv::builder()
            .cluster("provider")
            .start()
            .await
            .expect("start the test environment");
        let client = env["provider"].client().await.expect("client");
        for crd in klutch_a9s::provider::api::crds() {
            klutch_sdk::testenv::install_crd(&client, &crd)
                .await
                .expect("install CRD");
        }
        env
    })
    .await
}

/// A running provider; dropping it (or [`Provider::stop`]) stops it.
pub struct Provider {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
}

impl Provider {
    /// Stops the controllers and waits until they are gone.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    /// Kills the controllers without a graceful shutdown (a crash).
    pub async fn kill(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    async fn halt(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// One test's world: a client, a namespace, a run id and fakes.
pub struct World {
    /// Admin client.
    pub client: kube::Client,
    /// The test's run id (label value and name prefix).
    pub run: String,
    /// The test's namespace (Secrets).
    pub ns: String,
}

impl World {
    /// A new world for test `name`.
    pub async fn new(name: &str) -> World {
        let env = env().await;
        let client = env["provider"].client().await.expect("client");
        let run = format!("{name}-{}", fastrand::u32(..) % 100_000);
        let ns = run.clone();
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(ns.clone()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await
            .expect("create namespace");
        World { client, run, ns }
    }

    /// Options for this world's provider: only its objects, short polls.
    pub fn options(&self) -> Options {
        Options {
            poll: Duration::from_secs(3),
            label_selector: Some(format!("{RUN_LABEL}={}", self.run)),
            enable_management_policies: true,
            broker_timeout: Duration::from_secs(2),
            backup_manager_timeout: Duration::from_secs(2),
            catalog_ttl: Duration::from_secs(5),
            ..Options::default()
        }
    }

    /// Starts a provider with `options`.
    pub fn start(&self, options: Options) -> Provider {
        let metrics = Arc::new(Metrics::new());
        let (tx, rx) = oneshot::channel::<()>();
        let client = self.client.clone();
        let m = metrics.clone();
        let task = tokio::spawn(async move {
            klutch_a9s::provider::run::controllers(client, options, m, async move {
                let _ = rx.await;
            })
            .await;
        });
        Provider {
            stop: Some(tx),
            task: Some(task),
            metrics,
        }
    }

    /// A name unique to this world.
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.run)
    }

    /// Labels of a managed resource of this world, as a composition would set them.
    pub fn labels(&self, claim: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (RUN_LABEL.to_owned(), self.run.clone()),
            ("crossplane.io/claim-name".to_owned(), claim.to_owned()),
            ("crossplane.io/claim-namespace".to_owned(), self.ns.clone()),
        ])
    }

    /// Writes a credentials Secret and returns the ProviderConfig spec reading it.
    pub async fn credentials(
        &self,
        secret: &str,
        user: &str,
        password: &str,
    ) -> ProviderCredentials {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let s = Secret {
            metadata: ObjectMeta {
                name: Some(secret.to_owned()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([
                (
                    "username".to_owned(),
                    ByteString(format!("{user}\n").into_bytes()),
                ),
                (
                    "password".to_owned(),
                    ByteString(password.as_bytes().to_vec()),
                ),
            ])),
            ..Secret::default()
        };
        let _ = api.delete(secret, &DeleteParams::default()).await;
        api.create(&PostParams::default(), &s)
            .await
            .expect("create secret");
        let sel = |key: &str| CredentialSelectors {
            secret_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                namespace: self.ns.clone(),
                key: key.to_owned(),
            }),
            ..CredentialSelectors::default()
        };
        ProviderCredentials {
            source: CredentialsSource::Secret,
            username: sel("username"),
            password: sel("password"),
        }
    }

    /// Creates a ProviderConfig `name` for `url`.
    pub async fn provider_config(
        &self,
        name: &str,
        url: &str,
        type_: ServiceType,
        creds: ProviderCredentials,
    ) {
        let pc = ProviderConfig::new(
            name,
            ProviderConfigSpec {
                url: url.to_owned(),
                service_type: type_,
                health_check_endpoint: None,
                provider_credentials: creds,
                tls: None,
            },
        );
        Api::<ProviderConfig>::all(self.client.clone())
            .create(&PostParams::default(), &pc)
            .await
            .expect("create ProviderConfig");
    }

    /// A broker ProviderConfig `<run>-broker` for `broker`.
    pub async fn broker_config(&self, broker: &FakeA9sBroker) -> String {
        let name = self.name("broker");
        let creds = self.credentials(&name, "admin", "secret").await;
        self.provider_config(&name, &broker.url(), ServiceType::Servicebroker, creds)
            .await;
        name
    }

    /// A Backup Manager ProviderConfig `<run>-bm` for `bm`.
    pub async fn backup_config(&self, bm: &FakeBackupManager) -> String {
        let name = self.name("bm");
        let creds = self.credentials(&name, "admin", "secret").await;
        self.provider_config(&name, &bm.url(), ServiceType::Backupmanager, creds)
            .await;
        name
    }

    /// Creates a managed resource.
    pub async fn create<K: Managed>(&self, obj: &K) -> K {
        Api::<K>::all(self.client.clone())
            .create(&PostParams::default(), obj)
            .await
            .expect("create managed resource")
    }

    /// Deletes a managed resource.
    pub async fn delete<K: Managed>(&self, name: &str) {
        let _ = Api::<K>::all(self.client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete managed resource");
    }

    /// Waits until `f` holds for the object (or it is gone, when `f` accepts `None`).
    pub async fn wait<K: Managed>(
        &self,
        name: &str,
        what: &str,
        f: impl Fn(Option<&K>) -> bool,
    ) -> Option<K> {
        let api: Api<K> = Api::all(self.client.clone());
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = None;
        loop {
            let obj = api.get_opt(name).await.expect("get managed resource");
            if f(obj.as_ref()) {
                return obj;
            }
            last = obj.or(last);
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{} {name}: timed out waiting for {what}; last seen: {}",
                    K::kind(&()),
                    serde_json::to_string_pretty(&last).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits for a condition `type_` with `status` (and `reason`, when given).
    pub async fn wait_condition<K: Managed>(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) -> K {
        self.wait::<K>(name, &format!("{type_}={status} {reason:?}"), |o| {
            o.and_then(|o| conditions::get(o.conditions(), type_))
                .is_some_and(|c| c.status == status && reason.is_none_or(|r| c.reason == r))
        })
        .await
        .expect("object exists")
    }

    /// Waits until the object is gone.
    pub async fn wait_gone<K: Managed>(&self, name: &str) {
        self.wait::<K>(name, "deletion", |o| o.is_none()).await;
    }
}

/// The condition `type_` of an object (for messages).
pub fn condition<K: Managed>(obj: &K, type_: &str) -> klutch_a9s::provider::api::Condition {
    conditions::get(obj.conditions(), type_)
        .cloned()
        .unwrap_or_else(|| panic!("{} has no {type_} condition", obj.name_any()))
}

/// A fake a9s broker with asynchronous operations.
pub async fn async_broker(kind: klutch_a9s::credentials::DataServiceKind) -> FakeA9sBroker {
    FakeA9sBroker::start(FakeA9sBrokerConfig {
        osb: FakeBrokerConfig {
            mode: Mode::Async {
                duration: Duration::from_millis(300),
                retry_after: Some(1),
            },
            ..FakeBrokerConfig::default()
        },
        kind,
        page_size: 50,
    })
    .await
    .expect("start fake broker")
}

/// A fake Backup Manager.
pub async fn backup_manager() -> FakeBackupManager {
    FakeBackupManager::start(FakeBackupManagerConfig::default())
        .await
        .expect("start fake Backup Manager")
}

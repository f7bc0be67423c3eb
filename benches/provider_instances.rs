//! provider-anynines at scale: N ServiceInstances (default 500) with asynchronous provisioning
//! against the in-process fake a9s broker and a real kube-apiserver. Reports the time until all
//! are Ready, broker requests per instance and the peak RSS.
//!
//! ```text
//! cargo bench -p klutch-benches --bench provider_instances
//! KLUTCH_BENCH_PROVIDER_N=100 cargo bench -p klutch-benches --bench provider_instances
//! ```
//!
//! The provider runs in this process with the shipped defaults (10 concurrent reconciles per
//! controller, poll 1 m); the fake broker completes each provision 2 s after the PUT and
//! answers `Retry-After: 1` while it runs. Peak RSS is the whole bench process (provider,
//! fake broker, the bench's own client), so an upper bound for the provider.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use klutch_a9s::credentials::DataServiceKind;
use klutch_a9s::provider::Options;
use klutch_a9s::provider::api::provider_config::{CredentialSelectors, ProviderCredentials};
use klutch_a9s::provider::api::{
    CredentialsSource, ProviderConfig, ProviderConfigSpec, Reference, ResourceSpec,
    SecretKeySelector, ServiceInstance, ServiceInstanceParameters, ServiceInstanceSpec,
    ServiceType,
};
use klutch_a9s::provider::metrics::Metrics;
use klutch_a9s::testing::{A9sRoute, FakeA9sBroker, FakeA9sBrokerConfig};
use klutch_osb::testing::{FakeBrokerConfig, Mode, Route};
use klutch_sdk::crossplane::Managed as _;
use klutch_sdk::crossplane::conditions::is_true;
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::api::{Api, ObjectMeta, PostParams};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() {
    klutch_sdk::tls::install_crypto_provider();
    let n: usize = std::env::var("KLUTCH_BENCH_PROVIDER_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let env = TestEnv::builder()
        .cluster("provider")
        .controller_manager(false)
        .start()
        .await
        .expect("start the test environment");
    let client = env["provider"].client().await.expect("client");
    for crd in klutch_a9s::provider::api::crds() {
        install_crd(&client, &crd).await.expect("install CRD");
    }
    let broker = FakeA9sBroker::start(FakeA9sBrokerConfig {
        osb: FakeBrokerConfig {
            mode: Mode::Async {
                duration: Duration::from_secs(2),
                retry_after: Some(1),
            },
            ..FakeBrokerConfig::default()
        },
        kind: DataServiceKind::Postgresql,
        page_size: 100,
    })
    .await
    .expect("fake broker");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("broker-creds".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("username".into(), ByteString(b"admin".to_vec())),
            ("password".into(), ByteString(b"secret".to_vec())),
        ])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let sel = |key: &str| CredentialSelectors {
        secret_ref: Some(SecretKeySelector {
            name: "broker-creds".into(),
            namespace: "default".into(),
            key: key.into(),
        }),
        ..CredentialSelectors::default()
    };
    Api::<ProviderConfig>::all(client.clone())
        .create(
            &PostParams::default(),
            &ProviderConfig::new(
                "bench-broker",
                ProviderConfigSpec {
                    url: broker.url(),
                    service_type: ServiceType::Servicebroker,
                    health_check_endpoint: None,
                    provider_credentials: ProviderCredentials {
                        source: CredentialsSource::Secret,
                        username: sel("username"),
                        password: sel("password"),
                    },
                    tls: None,
                },
            ),
        )
        .await
        .expect("ProviderConfig");

    let rss_before = peak_rss_mib();
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let provider = tokio::spawn(klutch_a9s::provider::run::controllers(
        client.clone(),
        Options::default(),
        metrics.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let api: Api<ServiceInstance> = Api::all(client.clone());
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move {
                let si = ServiceInstance::new(
                    &format!("bench-{i:04}"),
                    ServiceInstanceSpec {
                        for_provider: ServiceInstanceParameters {
                            service_name: "fake-db".into(),
                            plan_name: "small".into(),
                            accepts_incomplete: true,
                            organization_guid: "org".into(),
                            space_guid: "space".into(),
                            ..Default::default()
                        },
                        resource: ResourceSpec {
                            provider_config_ref: Reference::named("bench-broker"),
                            ..ResourceSpec::default()
                        },
                    },
                );
                api.create(&PostParams::default(), &si)
                    .await
                    .expect("create");
            }
        })
        .await;
    let created = started.elapsed();
    let mut ready_at = Vec::new();
    loop {
        let list = api.list(&Default::default()).await.expect("list");
        let ready = list
            .items
            .iter()
            .filter(|si| is_true(si.conditions(), "Ready"))
            .count();
        ready_at.push((started.elapsed(), ready));
        if ready == n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "only {ready}/{n} Ready after 30 min"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_ready = started.elapsed();
    let half = ready_at
        .iter()
        .find(|(_, r)| *r * 2 >= n)
        .map_or(all_ready, |(t, _)| *t);
    let broker_requests = broker.requests().len();
    let provisions = broker.osb().count(Route::Provision);
    let polls = broker.osb().count(Route::InstanceLastOperation);
    let records = broker.count(A9sRoute::InstanceRecord);
    let peak = peak_rss_mib();
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), provider).await;

    println!("provider-anynines: {n} ServiceInstances, async provisioning (2 s, Retry-After 1)");
    println!("  created all in        {:>8.1} s", created.as_secs_f64());
    println!("  50 % Ready after      {:>8.1} s", half.as_secs_f64());
    println!("  all Ready after       {:>8.1} s", all_ready.as_secs_f64());
    println!(
        "  requests at the broker {broker_requests} ({:.2} per instance: {:.2} provision, {:.2} instance record; the fake's inner broker saw {:.2} last_operation per instance, its own record refreshes included)",
        broker_requests as f64 / n as f64,
        provisions as f64 / n as f64,
        records as f64 / n as f64,
        polls as f64 / n as f64,
    );
    println!(
        "  provider's own requests {:.2} per instance:",
        metrics.total_requests() as f64 / n as f64
    );
    for line in metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("provider_anynines_external_requests_total{"))
    {
        println!("    {line}");
    }
    println!(
        "  peak RSS              {peak:.0} MiB (before the provider started: {rss_before:.0} MiB)"
    );
    assert_eq!(provisions, n, "exactly one provision per instance");
}

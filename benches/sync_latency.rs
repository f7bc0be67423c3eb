//! Sync latency, throughput, memory and API requests per object of `ResourceSyncer` and of the
//! konnector binary between two real clusters, against the floor: a minimal watch-then-apply
//! loop between the same clusters.
//!
//! ```text
//! cargo build --release -p konnector                                    # the konnector rounds run it
//! cargo bench -p klutch-benches --bench sync_latency                    # N = 10, 100, 1000
//! KLUTCH_BENCH_AGENTS=floor,konnector cargo bench -p klutch-benches --bench sync_latency
//! KLUTCH_BENCH_SYNC_N=100 cargo bench -p klutch-benches --bench sync_latency
//! ```
//!
//! For each N, in one run: N objects are created in the app cluster at once; the bench stamps
//! each create and, through its own watch on the control plane, the moment the copy appears
//! (create → provider copy). Then it sets every copy's status on the control plane and stamps
//! when the app cluster shows it (provider status → consumer status). Requests are counted on
//! the syncer's own clients (a tower layer), so "writes per object" is exact; the konnector
//! counts its own (`konnector_api_requests_total`, read from its `/metrics`). Memory is the
//! bench process's peak RSS for the in-process agents (agent plus the bench itself, an upper
//! bound) and the konnector process's own peak RSS (VmHWM) for the konnector.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use klutch_sdk::api::{APIServiceNamespace, APIServiceNamespaceSpec, APIServiceNamespaceStatus};
use klutch_sdk::konnector::ResourceSyncer;
use klutch_sdk::testenv::{Identity, TestEnv, install_crd};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;

const CLUSTER_NS: &str = "cluster-bench";

/// Each round gets its own resource (group `<tag>.bench.klutch.test`), so an agent never sees the
/// objects of earlier rounds, which stay behind in the shared clusters.
fn widgets(tag: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&format!("{tag}.bench.klutch.test"), "v1", "Widget"),
        "widgets",
    )
}

/// Requests made through a client, by whether they write.
#[derive(Default)]
struct Counter {
    reads: AtomicU64,
    writes: AtomicU64,
}

async fn counted_client(identity: &Identity, counter: Arc<Counter>) -> kube::Client {
    let config = identity.config().await.expect("config");
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        let write = !matches!(*req.method(), http::Method::GET | http::Method::HEAD);
        let slot = if write {
            &counter.writes
        } else {
            &counter.reads
        };
        slot.fetch_add(1, Ordering::Relaxed);
        req
    });
    kube::client::ClientBuilder::try_from(config)
        .expect("client builder")
        .with_layer(&layer)
        .build()
}

async fn setup(env: &TestEnv, consumer_ns: &str, tag: &str) -> String {
    setup_with(env, consumer_ns, tag, true).await
}

/// [`setup`]; the consumer CRD only when `consumer_crd` (the konnector creates its own).
async fn setup_with(env: &TestEnv, consumer_ns: &str, tag: &str, consumer_crd: bool) -> String {
    let consumer = env["app"].client().await.unwrap();
    let provider = env["control-plane"].client().await.unwrap();
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("widgets.{tag}.bench.klutch.test") },
        "spec": { "group": format!("{tag}.bench.klutch.test"), "scope": "Namespaced",
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList" },
            "versions": [{ "name": "v1", "served": true, "storage": true, "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }] }
    }))
    .unwrap();
    install_crd(&provider, &crd).await.unwrap();
    if consumer_crd {
        install_crd(&consumer, &crd).await.unwrap();
    }
    for crd in klutch_sdk::api::crds() {
        install_crd(&provider, &crd).await.unwrap();
    }
    // Play the backend once: map the consumer namespace before the syncer starts.
    let provider_ns = klutch_sdk::sync::naming::service_namespace(CLUSTER_NS, consumer_ns);
    for (client, ns) in [
        (&provider, CLUSTER_NS),
        (&provider, provider_ns.as_str()),
        (&consumer, consumer_ns),
    ] {
        let n = Namespace {
            metadata: ObjectMeta {
                name: Some(ns.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let _ = Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &n)
            .await;
    }
    let mappings: Api<APIServiceNamespace> = Api::namespaced(provider.clone(), CLUSTER_NS);
    let _ = mappings
        .create(
            &PostParams::default(),
            &APIServiceNamespace::new(consumer_ns, APIServiceNamespaceSpec {}),
        )
        .await;
    let status =
        json!({ "status": APIServiceNamespaceStatus { namespace: Some(provider_ns.clone()) } });
    mappings
        .patch_status(consumer_ns, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    provider_ns
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.95), at(0.99))
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().trim_end_matches("kB").trim().to_owned())
        })
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Watches `api` and records when each object first satisfies `done`.
fn record<F>(
    api: Api<DynamicObject>,
    done: F,
) -> (
    Arc<Mutex<HashMap<String, Instant>>>,
    tokio::task::JoinHandle<()>,
)
where
    F: Fn(&DynamicObject) -> bool + Send + 'static,
{
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Ok(Some(obj)) = events.try_next().await {
            if done(&obj) {
                out.lock()
                    .unwrap()
                    .entry(obj.metadata.name.clone().unwrap())
                    .or_insert_with(Instant::now);
            }
        }
    });
    (seen, task)
}

async fn wait_all(seen: &Mutex<HashMap<String, Instant>>, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while seen.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} objects converged in {limit:?}",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Outcome {
    up: Vec<Duration>,
    down: Vec<Duration>,
    throughput: f64,
    writes_per_object: f64,
    requests_per_object: f64,
    rss: u64,
}

/// The agent under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Agent {
    /// The minimal watch-then-apply loop.
    Floor,
    /// `ResourceSyncer` in this process.
    Syncer,
    /// The konnector binary as a child process, bound like `kubectl bind` would.
    Konnector,
}

impl Agent {
    fn name(self) -> &'static str {
        match self {
            Agent::Floor => "floor",
            Agent::Syncer => "ResourceSyncer",
            Agent::Konnector => "konnector (binary)",
        }
    }
}

/// Where requests are counted: on the in-process agent's clients, or the konnector's
/// `konnector_api_requests_total`.
enum Counting {
    Local(Arc<Counter>),
    Konnector(String),
}

impl Counting {
    /// (reads, writes) so far.
    async fn now(&self) -> (u64, u64) {
        match self {
            Counting::Local(c) => (
                c.reads.load(Ordering::Relaxed),
                c.writes.load(Ordering::Relaxed),
            ),
            Counting::Konnector(address) => {
                let body = http_get(address, "/metrics").await.unwrap_or_default();
                let (mut reads, mut writes) = (0, 0);
                for line in body
                    .lines()
                    .filter(|l| l.starts_with("konnector_api_requests_total{"))
                {
                    let value: f64 = line
                        .rsplit(' ')
                        .next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0.0);
                    if line.contains("method=\"GET\"") || line.contains("method=\"HEAD\"") {
                        reads += value as u64;
                    } else {
                        writes += value as u64;
                    }
                }
                (reads, writes)
            }
        }
    }
}

async fn http_get(address: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(address).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// The konnector binary: `KLUTCH_KONNECTOR_BIN`, else `<target dir>/release/konnector` (build it
/// with `cargo build --release -p konnector`).
fn konnector_bin_path() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("KLUTCH_KONNECTOR_BIN") {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    target.join("release/konnector")
}

/// [`konnector_bin_path`], which must exist.
fn konnector_bin() -> std::path::PathBuf {
    let bin = konnector_bin_path();
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --release -p konnector` first (or set KLUTCH_KONNECTOR_BIN)",
        bin.display()
    );
    bin
}

/// Peak RSS of process `pid` (VmHWM), MiB.
fn peak_rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().trim_end_matches("kB").trim().to_owned())
        })
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// The provider side as the backend lays it out and the consumer side as `kubectl bind` leaves
/// it, for the konnector: export, ClusterBinding, kubeconfig Secrets, binding. The consumer CRD
/// is the konnector's to create.
async fn konnector_setup(env: &TestEnv, consumer_ns: &str, tag: &str) -> String {
    use klutch_sdk::api::export::Scope;
    use klutch_sdk::api::{
        APIServiceBinding, APIServiceBindingSpec, APIServiceExport, ClusterBinding,
        ClusterBindingSpec, ClusterSecretKeyRef, LocalSecretKeyRef,
    };
    let provider_ns = setup_with(env, consumer_ns, tag, false).await;
    let consumer = env["app"].client().await.unwrap();
    let provider = env["control-plane"].client().await.unwrap();
    let mut kc = env["control-plane"].admin().kubeconfig();
    kc.contexts[0].context.as_mut().unwrap().namespace = Some(CLUSTER_NS.into());
    let kubeconfig = serde_json::to_string(&kc).unwrap();
    let secret = |ns: &str, name: &str| json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": name, "namespace": ns }, "stringData": { "kubeconfig": kubeconfig } });
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(provider.clone(), CLUSTER_NS)
        .patch(
            "kubeconfig",
            &PatchParams::apply("bench").force(),
            &Patch::Apply(secret(CLUSTER_NS, "kubeconfig")),
        )
        .await
        .unwrap();
    let cb = ClusterBinding::new(
        "cluster",
        ClusterBindingSpec {
            kubeconfig_secret_ref: LocalSecretKeyRef {
                name: "kubeconfig".into(),
                key: Default::default(),
            },
            provider_pretty_name: "Bench".into(),
            service_provider_spec: None,
        },
    );
    let _ = Api::<ClusterBinding>::namespaced(provider.clone(), CLUSTER_NS)
        .create(&PostParams::default(), &cb)
        .await;
    let crd = Api::<CustomResourceDefinition>::all(provider.clone())
        .get(&format!("widgets.{tag}.bench.klutch.test"))
        .await
        .unwrap();
    let spec =
        klutch_sdk::api::convert::export_spec_from_crd(&crd, vec![], Scope::Namespaced, None)
            .unwrap();
    let name = format!("widgets.{tag}.bench.klutch.test");
    let mut export = serde_json::to_value(APIServiceExport::new(&name, spec)).unwrap();
    export["metadata"]["namespace"] = json!(CLUSTER_NS);
    Api::<APIServiceExport>::namespaced(provider.clone(), CLUSTER_NS)
        .patch(
            &name,
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&export),
        )
        .await
        .unwrap();
    let _ = Api::<Namespace>::all(consumer.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("klutch-bind".into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await;
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(consumer.clone(), "klutch-bind")
        .patch(
            "kubeconfig-bench",
            &PatchParams::apply("bench").force(),
            &Patch::Apply(secret("klutch-bind", "kubeconfig-bench")),
        )
        .await
        .unwrap();
    let binding = APIServiceBinding::new(
        &name,
        APIServiceBindingSpec {
            kubeconfig_secret_ref: ClusterSecretKeyRef {
                name: "kubeconfig-bench".into(),
                namespace: "klutch-bind".into(),
                key: Default::default(),
            },
            permission_claims: vec![],
        },
    );
    // The konnector installs the APIServiceBinding CRD; retry until it is served.
    let bindings: Api<APIServiceBinding> = Api::namespaced(consumer.clone(), "klutch-bind");
    loop {
        match bindings.create(&PostParams::default(), &binding).await {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 409 => break,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    provider_ns
}

/// One round: N creates, then N provider status updates, through `agent`.
async fn round(env: &TestEnv, n: usize, agent: Agent, tag: &str) -> Outcome {
    let consumer_ns = format!("bench-{tag}");
    let ar = widgets(tag);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut child = None;
    let (counting, provider_ns, task) = if agent == Agent::Konnector {
        let port = klutch_sdk::testenv::free_port().unwrap();
        let address = format!("127.0.0.1:{port}");
        let process = tokio::process::Command::new(konnector_bin())
            .arg("--kubeconfig")
            .arg(env["app"].kubeconfig_path())
            .args([
                "--lease-namespace",
                "default",
                "--lease-name",
                &format!("bench-{tag}"),
                "--pod-name",
                "bench",
            ])
            .args(["--healthz-address", &address, "-v", "1"])
            .kill_on_drop(true)
            .spawn()
            .expect("start the konnector");
        child = Some(process);
        let provider_ns = konnector_setup(env, &consumer_ns, tag).await;
        // Ready: the binding reports Ready (its sync context runs) and the consumer CRD is served.
        let consumer = env["app"].client().await.unwrap();
        let bindings: Api<klutch_sdk::api::APIServiceBinding> =
            Api::namespaced(consumer.clone(), "klutch-bind");
        let binding = format!("widgets.{tag}.bench.klutch.test");
        loop {
            let ready = bindings
                .get_opt(&binding)
                .await
                .ok()
                .flatten()
                .and_then(|b| b.status)
                .is_some_and(|s| {
                    s.conditions.iter().any(|c| {
                        c.type_ == "Ready" && c.status == klutch_sdk::api::ConditionStatus::True
                    })
                });
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let served: Api<DynamicObject> = Api::all_with(consumer, &ar);
        while served.list(&Default::default()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await; // as for the other agents
        (Counting::Konnector(address), provider_ns, None)
    } else {
        let provider_ns = setup(env, &consumer_ns, tag).await;
        let counter = Arc::new(Counter::default());
        let sync_consumer = counted_client(&env["app"].admin(), counter.clone()).await;
        let sync_provider = counted_client(&env["control-plane"].admin(), counter.clone()).await;
        let task = if agent == Agent::Floor {
            tokio::spawn(floor_loop(
                sync_consumer,
                sync_provider,
                ar.clone(),
                consumer_ns.clone(),
                provider_ns.clone(),
                stopped,
            ))
        } else {
            let syncer = ResourceSyncer::new(sync_consumer, sync_provider, ar.clone(), CLUSTER_NS);
            tokio::spawn(syncer.run(async move {
                let _ = stopped.await;
            }))
        };
        (Counting::Local(counter), provider_ns, Some(task))
    };
    tokio::time::sleep(Duration::from_millis(500)).await; // let the agent's watches start

    let bench_consumer = env["app"].client().await.unwrap();
    let bench_provider = env["control-plane"].client().await.unwrap();
    let mine: Api<DynamicObject> = Api::namespaced_with(bench_consumer, &consumer_ns, &ar);
    let theirs: Api<DynamicObject> = Api::namespaced_with(bench_provider, &provider_ns, &ar);
    let (copied, copy_watch) = record(theirs.clone(), |_| true);
    let (statused, status_watch) = record(mine.clone(), |o| o.data.get("status").is_some());

    let before = counting.now().await;
    let started = Instant::now();
    let mut created = HashMap::new();
    let creates = futures::stream::iter(0..n).map(|i| {
        let mine = mine.clone();
        let ar = ar.clone();
        async move {
            let mut w = DynamicObject::new(&format!("w{i}"), &ar);
            w.data = json!({ "spec": { "index": i } });
            mine.create(&PostParams::default(), &w)
                .await
                .expect("create");
            (format!("w{i}"), Instant::now())
        }
    });
    let mut creates = creates.buffer_unordered(16);
    while let Some((name, at)) = creates.next().await {
        created.insert(name, at);
    }
    eprintln!("bench: created; waiting for provider copies");
    wait_all(&copied, n, Duration::from_secs(600)).await;
    let converged = started.elapsed();
    let up: Vec<Duration> = copied
        .lock()
        .unwrap()
        .iter()
        .map(|(k, t)| t.saturating_duration_since(created[k]))
        .collect();

    let mut status_set = HashMap::new();
    let statuses = futures::stream::iter(0..n).map(|i| {
        let theirs = theirs.clone();
        async move {
            let name = format!("w{i}");
            theirs
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": { "ready": true } })),
                )
                .await
                .expect("set status");
            (name, Instant::now())
        }
    });
    let mut statuses = statuses.buffer_unordered(16);
    while let Some((name, at)) = statuses.next().await {
        status_set.insert(name, at);
    }
    wait_all(&statused, n, Duration::from_secs(600)).await;
    let down: Vec<Duration> = statused
        .lock()
        .unwrap()
        .iter()
        .map(|(k, t)| t.saturating_duration_since(status_set[k]))
        .collect();

    // Steady state: nothing changes, so nothing must be written.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = counting.now().await;
    let (reads, writes) = (after.0 - before.0, after.1 - before.1);
    let _ = stop.send(());
    if let Some(task) = task {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    let rss = match &mut child {
        Some(c) => {
            let rss = c.id().map_or(0, peak_rss_of);
            // Unbind, so that later rounds' konnectors do not serve this round's objects.
            let bindings: Api<klutch_sdk::api::APIServiceBinding> =
                Api::namespaced(env["app"].client().await.unwrap(), "klutch-bind");
            let name = format!("widgets.{tag}.bench.klutch.test");
            let _ = bindings.delete(&name, &Default::default()).await;
            while bindings.get_opt(&name).await.ok().flatten().is_some() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let _ = c.kill().await;
            rss
        }
        None => peak_rss_mib(),
    };
    copy_watch.abort();
    status_watch.abort();
    Outcome {
        up,
        down,
        throughput: n as f64 / converged.as_secs_f64(),
        writes_per_object: writes as f64 / n as f64,
        requests_per_object: (reads + writes) as f64 / n as f64,
        rss,
    }
}

/// The floor: watch consumer objects, apply each to the provider, copy status back. No finalizer,
/// no namespace mapping, no get before write: the least a sync loop can do.
async fn floor_loop(
    consumer: kube::Client,
    provider: kube::Client,
    ar: ApiResource,
    consumer_ns: String,
    provider_ns: String,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mine: Api<DynamicObject> = Api::namespaced_with(consumer, &consumer_ns, &ar);
    let theirs: Api<DynamicObject> = Api::namespaced_with(provider, &provider_ns, &ar);
    let up = {
        let (mine, theirs, ar) = (mine.clone(), theirs.clone(), ar.clone());
        async move {
            let mut events = watcher(mine, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Ok(Some(obj)) = events.try_next().await {
                let name = obj.metadata.name.clone().unwrap();
                let intent = json!({ "apiVersion": ar.api_version, "kind": ar.kind, "metadata": { "name": name }, "spec": obj.data["spec"] });
                let _ = theirs
                    .patch(
                        &name,
                        &PatchParams::apply("floor").force(),
                        &Patch::Apply(&intent),
                    )
                    .await;
            }
        }
    };
    let down = async move {
        let mut events = watcher(theirs, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Ok(Some(obj)) = events.try_next().await {
            if let Some(status) = obj.data.get("status") {
                let name = obj.metadata.name.clone().unwrap();
                let _ = mine
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "status": status })),
                    )
                    .await;
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        _ = stop => {}
    }
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let smoke = !std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if smoke {
        vec![5]
    } else {
        std::env::var("KLUTCH_BENCH_SYNC_N")
            .unwrap_or_else(|_| "10,100,1000".into())
            .split(',')
            .map(|v| {
                v.trim()
                    .parse()
                    .expect("KLUTCH_BENCH_SYNC_N is a comma-separated list of numbers")
            })
            .collect()
    };
    // KLUTCH_BENCH_AGENTS=syncer skips the floor (e.g. while profiling the syncer).
    // KLUTCH_BENCH_AGENTS: comma-separated of floor, syncer, konnector (default: all three).
    // Without the variable, the konnector runs when its release binary exists (`cargo build
    // --release -p konnector`); the table says so when it does not.
    let default_agents = if konnector_bin_path().exists() {
        "floor,syncer,konnector"
    } else {
        println!(
            "(no konnector binary at {}: build it with `cargo build --release -p konnector` to measure it)",
            konnector_bin_path().display()
        );
        "floor,syncer"
    };
    let agents: Vec<Agent> = std::env::var("KLUTCH_BENCH_AGENTS")
        .unwrap_or_else(|_| default_agents.into())
        .split(',')
        .map(|a| match a.trim() {
            "floor" => Agent::Floor,
            "syncer" => Agent::Syncer,
            "konnector" => Agent::Konnector,
            other => {
                panic!("unknown agent {other:?} in KLUTCH_BENCH_AGENTS (floor, syncer, konnector)")
            }
        })
        .collect();
    let env = TestEnv::builder()
        .cluster("control-plane")
        .cluster("app")
        .controller_manager(false)
        .start()
        .await
        .expect("start clusters");
    println!(
        "| N | agent | create→provider p50/p95/p99 (ms) | provider status→consumer p50/p95/p99 (ms) | objects/s | writes/object | requests/object | peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in sizes {
        for agent in agents.clone() {
            let tag = format!("{n}-{}", format!("{agent:?}").to_lowercase());
            let o = round(&env, n, agent, &tag).await;
            let (u50, u95, u99) = percentiles(o.up);
            let (d50, d95, d99) = percentiles(o.down);
            println!(
                "| {n} | {} | {u50:.0} / {u95:.0} / {u99:.0} | {d50:.0} / {d95:.0} / {d99:.0} | {:.0} | {:.2} | {:.2} | {} |",
                agent.name(),
                o.throughput,
                o.writes_per_object,
                o.requests_per_object,
                o.rss
            );
        }
    }
}

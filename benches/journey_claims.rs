//! The whole journey under load: N `PostgresqlInstance` claims (default 100) applied at once in
//! the app cluster of [`klutch_testenv::journey::Journey`] (real clusters, Crossplane core and
//! function-patch-and-transform as processes, provider-anynines' engine, the konnector, the
//! fake a9s broker), and for each one, the moment its instance claim is Ready in the app
//! cluster, a `ServiceBinding` claim whose credentials Secret comes back.
//!
//! ```text
//! cargo build --release -p konnector -p provider-anynines
//! cargo bench -p klutch-benches --bench journey_claims                 # N = 100
//! KLUTCH_BENCH_JOURNEY_N=20 cargo bench -p klutch-benches --bench journey_claims
//! KLUTCH_BENCH_JOURNEY_IN_PROCESS=1 cargo bench -p klutch-benches --bench journey_claims
//! ```
//!
//! Every hop is timed from watch events: the bench watches each stage (app claim, control-plane
//! copy, managed resource, its `Ready`, the connection Secret on either side) and stamps the
//! first event that shows it, so no poll interval quantises a result. Hops:
//!
//! - app → control plane: the claim in the app cluster → its copy on the control plane
//!   (konnector);
//! - claim → managed resource: the control-plane claim → the `dataservices.anynines.com` managed
//!   resource composed for it (Crossplane core, claim → XR → MR, found by the
//!   `crossplane.io/claim-name` label);
//! - managed resource → broker ready: the MR → its `Ready=True` (provider-anynines, the broker's
//!   asynchronous provision with `Retry-After`);
//! - status back: MR `Ready=True` → the app-cluster claim `Ready=True` (Crossplane's XR and claim
//!   status, then the konnector);
//! - Secret back (bindings): the connection Secret on the control plane → the same Secret in the
//!   app cluster (konnector, claimed resources).
//!
//! Broker requests are counted from the fake broker's own request log. Memory is the peak RSS
//! (VmHWM) from `/proc` of each process: Crossplane core and the function (started by the
//! fixture), and the konnector and provider-anynines, which the bench runs as their release
//! binaries (`KLUTCH_KONNECTOR_BIN`, `KLUTCH_PROVIDER_BIN`, default `<target dir>/release/…`)
//! in place of the fixture's in-process engines, with the fixture's options (provider poll 2 s,
//! broker timeouts 5 s, catalogue TTL 5 s). With `KLUTCH_BENCH_JOURNEY_IN_PROCESS=1` they stay
//! tasks of this process and are reported together with the bench process (reference backend,
//! fakes, watches): an upper bound for the two.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use klutch_a9s::claims::ServiceInstanceType;
use klutch_a9s::claims::binding::{ServiceBinding, ServiceBindingSpec};
use klutch_a9s::testing::A9sRoute;
use klutch_testenv::journey::{APP, CONTROL_PLANE, Journey, JourneyConfig, claim_resource};
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, PostParams};
use kube::runtime::watcher;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

/// The app-cluster namespace of the bench's claims.
const NS: &str = "journey-bench";

/// A point on a claim's way, stamped at the first watch event that shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Stage {
    AppInstance,
    CpInstance,
    InstanceMr,
    InstanceMrReady,
    CpInstanceReady,
    AppInstanceReady,
    AppBinding,
    CpBinding,
    BindingMr,
    BindingMrReady,
    CpBindingReady,
    AppBindingReady,
    CpSecret,
    AppSecret,
}

/// First sight of each (stage, claim) pair; the claim is named by its instance claim's name.
#[derive(Default)]
struct Stamps(Mutex<HashMap<(Stage, String), Instant>>);

impl Stamps {
    /// Records `stage` of `claim` at `at` unless seen before; true when this was the first time.
    fn see(&self, stage: Stage, claim: &str, at: Instant) -> bool {
        let mut map = self.0.lock().expect("stamps lock");
        match map.entry((stage, claim.to_owned())) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(at);
                true
            }
        }
    }

    fn get(&self, stage: Stage, claim: &str) -> Option<Instant> {
        self.0
            .lock()
            .expect("stamps lock")
            .get(&(stage, claim.to_owned()))
            .copied()
    }

    fn count(&self, stage: Stage) -> usize {
        self.0
            .lock()
            .expect("stamps lock")
            .keys()
            .filter(|(s, _)| *s == stage)
            .count()
    }
}

/// Whether `obj` has condition `type_` with status `True`.
fn is_true(obj: &DynamicObject, type_: &str) -> bool {
    obj.data["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == type_ && c["status"] == "True")
        })
}

/// Whether control-plane namespace `ns` is the one the app namespace [`NS`] maps to
/// (`<cluster namespace>-journey-bench`).
fn is_bench_namespace(ns: Option<&str>) -> bool {
    ns.is_some_and(|ns| ns.ends_with(&format!("-{NS}")))
}

/// The instance claim a binding claim, or its Secret, belongs to: `bench-0001-app` and
/// `bench-0001-app-creds` → `bench-0001`.
fn instance_of(name: &str) -> Option<&str> {
    name.strip_suffix("-app-creds")
        .or_else(|| name.strip_suffix("-app"))
}

/// What a watch event of one object tells: the stages it shows, per claim.
type Classify = fn(&DynamicObject) -> Vec<(Stage, String)>;

/// Watches `api` in a task, stamping the stages `classify` finds in every object it sees;
/// `first` gets each newly stamped (stage, claim). Returns when the initial list is done.
async fn watch(
    api: Api<DynamicObject>,
    stamps: Arc<Stamps>,
    classify: Classify,
    first: tokio::sync::mpsc::UnboundedSender<(Stage, String)>,
) {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
        while let Some(event) = events.next().await {
            let at = Instant::now();
            match event {
                Ok(Event::Apply(obj) | Event::InitApply(obj)) => {
                    for (stage, claim) in classify(&obj) {
                        if stamps.see(stage, &claim, at) {
                            let _ = first.send((stage, claim));
                        }
                    }
                }
                Ok(Event::InitDone) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("watch error (retrying): {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    let _ = ready_rx.await;
}

fn app_instance(obj: &DynamicObject) -> Vec<(Stage, String)> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let mut out = vec![(Stage::AppInstance, name.clone())];
    if is_true(obj, "Ready") {
        out.push((Stage::AppInstanceReady, name));
    }
    out
}

fn cp_instance(obj: &DynamicObject) -> Vec<(Stage, String)> {
    if !is_bench_namespace(obj.metadata.namespace.as_deref()) {
        return Vec::new();
    }
    let name = obj.metadata.name.clone().unwrap_or_default();
    let mut out = vec![(Stage::CpInstance, name.clone())];
    if is_true(obj, "Ready") {
        out.push((Stage::CpInstanceReady, name));
    }
    out
}

/// The claim a composed managed resource belongs to, from Crossplane's labels.
fn mr_claim(obj: &DynamicObject) -> Option<String> {
    let labels = obj.metadata.labels.as_ref()?;
    is_bench_namespace(
        labels
            .get("crossplane.io/claim-namespace")
            .map(String::as_str),
    )
    .then(|| labels.get("crossplane.io/claim-name").cloned())?
}

fn instance_mr(obj: &DynamicObject) -> Vec<(Stage, String)> {
    let Some(name) = mr_claim(obj) else {
        return Vec::new();
    };
    let mut out = vec![(Stage::InstanceMr, name.clone())];
    if is_true(obj, "Ready") {
        out.push((Stage::InstanceMrReady, name));
    }
    out
}

fn binding_mr(obj: &DynamicObject) -> Vec<(Stage, String)> {
    let Some(name) = mr_claim(obj) else {
        return Vec::new();
    };
    let Some(instance) = instance_of(&name).map(str::to_owned) else {
        return Vec::new();
    };
    let mut out = vec![(Stage::BindingMr, instance.clone())];
    if is_true(obj, "Ready") {
        out.push((Stage::BindingMrReady, instance));
    }
    out
}

fn binding(obj: &DynamicObject, seen: Stage, ready: Stage) -> Vec<(Stage, String)> {
    let Some(instance) = obj.metadata.name.as_deref().and_then(instance_of) else {
        return Vec::new();
    };
    let mut out = vec![(seen, instance.to_owned())];
    if is_true(obj, "Ready") {
        out.push((ready, instance.to_owned()));
    }
    out
}

fn app_binding(obj: &DynamicObject) -> Vec<(Stage, String)> {
    binding(obj, Stage::AppBinding, Stage::AppBindingReady)
}

fn cp_binding(obj: &DynamicObject) -> Vec<(Stage, String)> {
    if !is_bench_namespace(obj.metadata.namespace.as_deref()) {
        return Vec::new();
    }
    binding(obj, Stage::CpBinding, Stage::CpBindingReady)
}

/// A connection Secret with data, as [`Stage`] `stage`.
fn secret(obj: &DynamicObject, stage: Stage) -> Vec<(Stage, String)> {
    let has_data = obj.data["data"].as_object().is_some_and(|d| !d.is_empty());
    match obj.metadata.name.as_deref() {
        Some(name) if has_data && name.ends_with("-app-creds") => instance_of(name)
            .map(|i| vec![(stage, i.to_owned())])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn app_secret(obj: &DynamicObject) -> Vec<(Stage, String)> {
    secret(obj, Stage::AppSecret)
}

fn cp_secret(obj: &DynamicObject) -> Vec<(Stage, String)> {
    if !is_bench_namespace(obj.metadata.namespace.as_deref()) {
        return Vec::new();
    }
    secret(obj, Stage::CpSecret)
}

/// p50/p95/p99 (nearest rank) in seconds, and the count.
fn percentiles(mut v: Vec<Duration>) -> Option<(f64, f64, f64, usize)> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64();
    Some((at(0.5), at(0.95), at(0.99), v.len()))
}

/// A field of `/proc/<pid>/status` in KiB (`VmHWM`, `VmRSS`).
fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Peak RSS (VmHWM) in MiB of every process in process group `pgid`, summed.
fn group_peak_mib(pgid: u32) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut kib = 0;
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, pgrp, ...
        let pgrp: Option<u32> = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse().ok());
        if pgrp == Some(pgid) {
            kib += status_kib(&pid, "VmHWM");
        }
    }
    kib as f64 / 1024.0
}

/// A release binary of this workspace: `$env_var`, else `<target dir>/release/<name>`.
fn release_bin(env_var: &str, name: &str) -> std::path::PathBuf {
    let bin = std::env::var_os(env_var).map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(
                    || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
                    std::path::PathBuf::from,
                )
                .join("release")
                .join(name)
        },
        std::path::PathBuf::from,
    );
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --release -p konnector -p provider-anynines` first (or set {env_var}, or KLUTCH_BENCH_JOURNEY_IN_PROCESS=1)",
        bin.display()
    );
    bin
}

/// A log file for a child process in the control plane's directory.
fn log_file(journey: &Journey, name: &str) -> std::fs::File {
    let path = journey.env()[CONTROL_PLANE].dir().join(name);
    std::fs::File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
}

/// Replaces the fixture's in-process provider with the provider-anynines binary (the
/// fixture's options) and starts the konnector binary for the app cluster; waits until every
/// APIServiceBinding of the app cluster is Ready again.
async fn start_processes(journey: &Journey) -> (tokio::process::Child, tokio::process::Child) {
    journey.stop_provider().await;
    let port = || klutch_sdk::testenv::free_port().expect("a free port");
    let provider =
        tokio::process::Command::new(release_bin("KLUTCH_PROVIDER_BIN", "provider-anynines"))
            .env("KUBECONFIG", journey.env()[CONTROL_PLANE].kubeconfig_path())
            .args(["--poll", "2s", "--broker-timeout", "5s"])
            .args(["--backup-manager-timeout", "5s", "--catalog-ttl", "5s"])
            .args([
                "--health-probe-bind-address",
                &format!("127.0.0.1:{}", port()),
                "--metrics-bind-address",
                &format!("127.0.0.1:{}", port()),
            ])
            .stdout(log_file(journey, "provider-anynines.log"))
            .stderr(log_file(journey, "provider-anynines.err"))
            .kill_on_drop(true)
            .spawn()
            .expect("start provider-anynines");
    let konnector = tokio::process::Command::new(release_bin("KLUTCH_KONNECTOR_BIN", "konnector"))
        .arg("--kubeconfig")
        .arg(journey.env()[APP].kubeconfig_path())
        .args([
            "--lease-namespace",
            "default",
            "--lease-name",
            "journey-bench",
        ])
        .args(["--pod-name", "bench", "-v", "1"])
        .args(["--healthz-address", &format!("127.0.0.1:{}", port())])
        .stdout(log_file(journey, "konnector.log"))
        .stderr(log_file(journey, "konnector.err"))
        .kill_on_drop(true)
        .spawn()
        .expect("start the konnector");
    let bindings: Api<klutch_sdk::api::APIServiceBinding> =
        Api::all(journey.app().await.expect("app client"));
    let waited = Instant::now();
    loop {
        let list = bindings.list(&Default::default()).await.map(|l| l.items);
        let ready = list.as_ref().is_ok_and(|items| {
            !items.is_empty()
                && items.iter().all(|b| {
                    b.status.as_ref().is_some_and(|s| {
                        s.conditions.iter().any(|c| {
                            c.type_ == "Ready" && c.status == klutch_sdk::api::ConditionStatus::True
                        })
                    })
                })
        });
        if ready {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "the konnector process did not make the bindings Ready: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (provider, konnector)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The requests the PostgreSQL broker's front has seen, by route (OSB routes from its inner
/// broker's log, a9s routes from its own).
fn broker_requests(journey: &Journey) -> BTreeMap<String, usize> {
    let broker = journey.broker(ServiceInstanceType::Postgresql);
    let mut out = BTreeMap::new();
    for r in broker.requests() {
        if r.route != A9sRoute::Osb {
            *out.entry(format!("a9s {:?}", r.route)).or_default() += 1;
        }
    }
    for r in broker.osb().requests() {
        *out.entry(format!("osb {:?}", r.route)).or_default() += 1;
    }
    out
}

#[tokio::main]
async fn main() {
    klutch_sdk::tls::install_crypto_provider();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KLUTCH_BENCH_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let n: usize = env_or("KLUTCH_BENCH_JOURNEY_N", 100);
    let timeout = Duration::from_secs(env_or("KLUTCH_BENCH_JOURNEY_TIMEOUT_SECS", 1800));
    let in_process = std::env::var("KLUTCH_BENCH_JOURNEY_IN_PROCESS").is_ok_and(|v| v == "1");

    let started = Instant::now();
    let journey = Journey::start(JourneyConfig {
        bind: vec!["postgresqlinstances".into(), "servicebindings".into()],
        konnector: in_process,
        ..JourneyConfig::default()
    })
    .await
    .expect("start the journey");
    let processes = if in_process {
        None
    } else {
        Some(start_processes(&journey).await)
    };
    eprintln!(
        "journey started in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let app = journey.app().await.expect("app client");
    let cp = journey.control_plane().await.expect("control-plane client");
    Api::<Namespace>::all(app.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(NS.into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .expect("create the bench namespace");

    let instances = claim_resource("PostgresqlInstance").expect("PostgresqlInstance claims");
    let bindings = claim_resource("ServiceBinding").expect("ServiceBinding claims");
    let instance_mrs = ApiResource::erase::<klutch_a9s::provider::api::ServiceInstance>(&());
    let binding_mrs = ApiResource::erase::<klutch_a9s::provider::api::ServiceBinding>(&());
    let secrets = ApiResource::erase::<Secret>(&());

    let stamps = Arc::new(Stamps::default());
    let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel();
    let watches: [(Api<DynamicObject>, Classify); 7] = [
        (
            Api::namespaced_with(app.clone(), NS, &instances),
            app_instance,
        ),
        (Api::all_with(cp.clone(), &instances), cp_instance),
        (Api::all_with(cp.clone(), &instance_mrs), instance_mr),
        (
            Api::namespaced_with(app.clone(), NS, &bindings),
            app_binding,
        ),
        (Api::all_with(cp.clone(), &bindings), cp_binding),
        (Api::all_with(cp.clone(), &binding_mrs), binding_mr),
        (Api::namespaced_with(app.clone(), NS, &secrets), app_secret),
    ];
    for (api, classify) in watches {
        watch(api, stamps.clone(), classify, first_tx.clone()).await;
    }
    watch(
        Api::all_with(cp.clone(), &secrets),
        stamps.clone(),
        cp_secret,
        first_tx.clone(),
    )
    .await;
    drop(first_tx);

    // The instance claim: the package's PostgreSQL example, renamed.
    let template: Value = klutch_a9s::claims::package::examples()
        .into_iter()
        .find(|(f, _)| *f == "postgresql-a9s.yaml")
        .expect("the PostgreSQL example")
        .1[0]
        .clone();
    let requests_before = broker_requests(&journey);
    let provider_requests_before = journey.provider_metrics().total_requests();
    let rss_before = status_kib("self", "VmRSS") as f64 / 1024.0;
    let names: Vec<String> = (0..n).map(|i| format!("bench-{i:04}")).collect();

    // All N instance claims at once.
    let claims_app: Api<DynamicObject> = Api::namespaced_with(app.clone(), NS, &instances);
    let t0 = Instant::now();
    futures::stream::iter(names.iter().cloned())
        .for_each_concurrent(n.max(1), |name| {
            let api = claims_app.clone();
            let mut doc = template.clone();
            async move {
                doc["metadata"] = json!({ "name": name, "namespace": NS });
                let obj: DynamicObject = serde_json::from_value(doc).expect("a claim");
                api.create(&PostParams::default(), &obj)
                    .await
                    .unwrap_or_else(|e| panic!("create PostgresqlInstance {name}: {e}"));
            }
        })
        .await;
    let created = t0.elapsed();
    eprintln!("{n} PostgresqlInstance claims created in {created:.1?}");

    // A binding for each instance the moment its claim is Ready in the app cluster; until every
    // credentials Secret is back.
    let bindings_app: Api<DynamicObject> = Api::namespaced_with(app.clone(), NS, &bindings);
    let mut creating = futures::stream::FuturesUnordered::new();
    let mut last_report = Instant::now();
    loop {
        if stamps.count(Stage::AppSecret) >= n && stamps.count(Stage::AppInstanceReady) >= n {
            break;
        }
        if t0.elapsed() > timeout {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "{:>5.0} s: copies {}, instance MRs {} (Ready {}), instances Ready {}, Secrets {}",
                t0.elapsed().as_secs_f64(),
                stamps.count(Stage::CpInstance),
                stamps.count(Stage::InstanceMr),
                stamps.count(Stage::InstanceMrReady),
                stamps.count(Stage::AppInstanceReady),
                stamps.count(Stage::AppSecret),
            );
        }
        tokio::select! {
            Some((stage, name)) = first_rx.recv() => {
                if stage == Stage::AppInstanceReady && names.contains(&name) {
                    let api = bindings_app.clone();
                    creating.push(async move {
                        let binding_name = format!("{name}-app");
                        let mut b = ServiceBinding::new(
                            &binding_name,
                            ServiceBindingSpec::new(&name, ServiceInstanceType::Postgresql).a9s(),
                        );
                        b.metadata.namespace = Some(NS.into());
                        let obj: DynamicObject = serde_json::from_value(
                            serde_json::to_value(&b).expect("serialise a binding"),
                        )
                        .expect("a binding claim");
                        api.create(&PostParams::default(), &obj)
                            .await
                            .unwrap_or_else(|e| panic!("create ServiceBinding {binding_name}: {e}"));
                    });
                }
            }
            Some(()) = creating.next(), if !creating.is_empty() => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    let elapsed = t0.elapsed();
    let complete = stamps.count(Stage::AppSecret) >= n;

    let requests_after = broker_requests(&journey);
    let provider_requests = journey.provider_metrics().total_requests() - provider_requests_before;
    let bench_peak = status_kib("self", "VmHWM") as f64 / 1024.0;
    let pid_peak = |child: &tokio::process::Child| {
        child.id().map_or(0.0, |pid| {
            status_kib(&pid.to_string(), "VmHWM") as f64 / 1024.0
        })
    };
    let process_peaks = processes
        .as_ref()
        .map(|(provider, konnector)| (pid_peak(provider), pid_peak(konnector)));
    let crossplane = journey.crossplane().pids();
    let core_peak = crossplane.first().map_or(0.0, |p| group_peak_mib(*p));
    let function_peak = crossplane.get(1).map_or(0.0, |p| group_peak_mib(*p));
    let cp_cluster_peak: f64 = journey.env()[CONTROL_PLANE]
        .pids()
        .into_iter()
        .map(group_peak_mib)
        .sum();
    let app_cluster_peak: f64 = journey.env()[APP]
        .pids()
        .into_iter()
        .map(group_peak_mib)
        .sum();

    let hop = |from: Stage, to: Stage| -> Vec<Duration> {
        names
            .iter()
            .filter_map(|c| {
                Some(
                    stamps
                        .get(to, c)?
                        .saturating_duration_since(stamps.get(from, c)?),
                )
            })
            .collect()
    };
    let rows: [(&str, &str, Stage, Stage); 12] = [
        (
            "instance",
            "app → control plane",
            Stage::AppInstance,
            Stage::CpInstance,
        ),
        (
            "instance",
            "claim → managed resource",
            Stage::CpInstance,
            Stage::InstanceMr,
        ),
        (
            "instance",
            "managed resource → broker ready",
            Stage::InstanceMr,
            Stage::InstanceMrReady,
        ),
        (
            "instance",
            "status back (MR Ready → app claim Ready)",
            Stage::InstanceMrReady,
            Stage::AppInstanceReady,
        ),
        (
            "instance",
            "  of which control-plane claim Ready → app claim Ready",
            Stage::CpInstanceReady,
            Stage::AppInstanceReady,
        ),
        (
            "instance",
            "end to end (app claim → app claim Ready)",
            Stage::AppInstance,
            Stage::AppInstanceReady,
        ),
        (
            "binding",
            "app → control plane",
            Stage::AppBinding,
            Stage::CpBinding,
        ),
        (
            "binding",
            "claim → managed resource",
            Stage::CpBinding,
            Stage::BindingMr,
        ),
        (
            "binding",
            "managed resource → broker ready",
            Stage::BindingMr,
            Stage::BindingMrReady,
        ),
        (
            "binding",
            "status back (MR Ready → app claim Ready)",
            Stage::BindingMrReady,
            Stage::AppBindingReady,
        ),
        (
            "binding",
            "Secret back (control-plane Secret → app Secret)",
            Stage::CpSecret,
            Stage::AppSecret,
        ),
        (
            "binding",
            "end to end (app claim → app Secret)",
            Stage::AppBinding,
            Stage::AppSecret,
        ),
    ];

    println!(
        "journey: {n} PostgresqlInstance claims applied at once in the app cluster, a ServiceBinding for each once Ready"
    );
    println!(
        "  fake broker: asynchronous provision (2 s, Retry-After 1); provider poll 2 s (JourneyConfig::default); konnector and provider {}",
        if in_process {
            "in the bench process"
        } else {
            "as release-binary processes"
        }
    );
    println!(
        "  {} of {n} instance claims Ready, {} of {n} credentials Secrets back, after {:.1} s{}",
        stamps.count(Stage::AppInstanceReady),
        stamps.count(Stage::AppSecret),
        elapsed.as_secs_f64(),
        if complete { "" } else { " (TIMED OUT)" }
    );
    println!();
    println!("| claim | hop | p50 (s) | p95 (s) | p99 (s) | n |");
    println!("|---|---|---|---|---|---|");
    for (claim, name, from, to) in rows {
        match percentiles(hop(from, to)) {
            Some((p50, p95, p99, count)) => {
                println!("| {claim} | {name} | {p50:.2} | {p95:.2} | {p99:.2} | {count} |")
            }
            None => println!("| {claim} | {name} | – | – | – | 0 |"),
        }
    }
    println!();
    let span = |from: Stage, to: Stage| -> Option<f64> {
        let first = names.iter().filter_map(|c| stamps.get(from, c)).min()?;
        let last = names.iter().filter_map(|c| stamps.get(to, c)).max()?;
        Some(last.saturating_duration_since(first).as_secs_f64())
    };
    if let Some(s) = span(Stage::AppInstance, Stage::AppInstanceReady) {
        println!(
            "  throughput: instances Ready {:.2}/s ({n} in {s:.1} s from the first app claim to the last Ready)",
            stamps.count(Stage::AppInstanceReady) as f64 / s
        );
    }
    if let Some(s) = span(Stage::AppInstance, Stage::AppSecret) {
        println!(
            "  throughput: whole journey {:.2} claims/s ({n} instance + binding pairs, first app claim → last Secret in {s:.1} s)",
            stamps.count(Stage::AppSecret) as f64 / s
        );
    }
    let total_before: usize = requests_before.values().sum();
    let total_after: usize = requests_after.values().sum();
    println!(
        "  PostgreSQL broker requests: {:.2} per claim pair (instance + binding), {} in all:",
        (total_after - total_before) as f64 / n as f64,
        total_after - total_before
    );
    for (route, count) in &requests_after {
        let delta = count - requests_before.get(route).copied().unwrap_or(0);
        if delta > 0 {
            println!(
                "    {route:<28} {:>6.2} per claim pair ({delta})",
                delta as f64 / n as f64
            );
        }
    }
    if in_process {
        println!(
            "  provider-anynines' external requests (its metric): {:.2} per claim pair",
            provider_requests as f64 / n as f64
        );
    }
    println!("  peak RSS (VmHWM, from /proc):");
    println!("    Crossplane core (process)                      {core_peak:>7.0} MiB");
    println!("    function-patch-and-transform (process)         {function_peak:>7.0} MiB");
    match process_peaks {
        Some((provider, konnector)) => {
            println!("    provider-anynines (process)                    {provider:>7.0} MiB");
            println!("    konnector (process)                            {konnector:>7.0} MiB");
            println!(
                "    bench process (backend, fakes, watches)        {bench_peak:>7.0} MiB ({rss_before:.0} MiB resident before the claims)"
            );
        }
        None => println!(
            "    bench process: konnector + provider-anynines   {bench_peak:>7.0} MiB (in-process with the reference backend, fake brokers and the bench's watches, so an upper bound for the two; {rss_before:.0} MiB resident before the claims)"
        ),
    }
    println!(
        "    control-plane cluster (apiserver + controller manager) {cp_cluster_peak:.0} MiB, app cluster {app_cluster_peak:.0} MiB"
    );
    if !complete {
        eprintln!("{}", journey.log_tails(40));
        panic!("the journey did not complete within {timeout:?}");
    }
}

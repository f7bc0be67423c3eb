//! Latency and throughput of the backend's `/export` and `/bind` on loopback against a warm real
//! cluster, and the API requests one binding-space creation costs.
//!
//! ```text
//! cargo bench -p klutch-benches --bench backend_bind
//! ```
//!
//! The reference template backend serves from this process; sessions are sealed with the
//! server's own keys (the login itself is the IdP's cost, not measured). API requests are counted
//! by a tower layer on the binding-space client only (the catalogue is served from watches).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use klutch_sdk::api::export::{ClusterScopedIsolation, Scope};
use klutch_sdk::backend::session::Session;
use klutch_sdk::backend::{
    AuthError, Authenticator, BindingSpaceConfig, BindingSpaces, ExternalCluster, LoginStart,
    Server, ServerConfig, SessionKeys, TemplateBackend, TemplateBackendConfig, VerifiedIdentity,
};
use klutch_sdk::testenv::browser::bind_link;
use klutch_sdk::testenv::fixtures::TestCrd;
use klutch_sdk::testenv::{TestEnv, install_crd};
use kube::api::{Api, Patch, PatchParams};

/// The bench never logs in through an IdP.
struct NoLogin;

impl Authenticator for NoLogin {
    async fn start_login(&self, _: &str, _: &str) -> Result<LoginStart, AuthError> {
        Err(AuthError::Rejected("no login in the bench".into()))
    }
    async fn finish_login(&self, _: &str, _: &str, _: &str) -> Result<VerifiedIdentity, AuthError> {
        Err(AuthError::Rejected("no login in the bench".into()))
    }
}

#[derive(Default)]
struct Counter {
    reads: AtomicU64,
    writes: AtomicU64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(what: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort();
    println!(
        "| {what} | {} | {:.2} / {:.2} / {:.2} | {:.0} |",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
        samples.len() as f64 / wall.as_secs_f64()
    );
}

async fn sequential(
    http: &reqwest::Client,
    urls: &[(String, String)],
    expect: u16,
) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let mut samples = Vec::with_capacity(urls.len());
    for (url, cookie) in urls {
        let t = Instant::now();
        let resp = http
            .get(url)
            .header("cookie", cookie)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), expect, "{url}");
        let _ = resp.bytes().await;
        samples.push(t.elapsed());
    }
    (samples, start.elapsed())
}

async fn concurrent(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
    n: usize,
    width: usize,
) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..width {
        let (http, url, cookie) = (http.clone(), url.to_owned(), cookie.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in (w..n).step_by(width) {
                let t = Instant::now();
                let resp = http
                    .get(&url)
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .expect("request");
                assert!(resp.status().is_success() || resp.status().is_redirection());
                let _ = resp.bytes().await;
                out.push(t.elapsed());
            }
            out
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.expect("task"));
    }
    (samples, start.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    klutch_sdk::tls::install_crypto_provider();
    let env = TestEnv::builder()
        .cluster("provider")
        .start()
        .await
        .expect("start the cluster");
    let cluster = &env["provider"];
    let admin = cluster.client().await.expect("client");
    for crd in klutch_sdk::api::crds() {
        install_crd(&admin, &crd).await.expect("CRDs");
    }
    install_crd(&admin, &TestCrd::mangodb().build())
        .await
        .expect("CRD");
    let template: klutch_sdk::api::APIServiceExportTemplate = serde_json::from_value(serde_json::json!({
        "apiVersion": "example-backend.klutch.anynines.com/v1alpha1", "kind": "APIServiceExportTemplate",
        "metadata": { "name": "mangodbs", "namespace": "default" },
        "spec": { "APIServiceSelector": { "group": "mangodb.com", "resource": "mangodbs" } }
    }))
    .unwrap();
    Api::<klutch_sdk::api::APIServiceExportTemplate>::namespaced(admin.clone(), "default")
        .patch(
            "mangodbs",
            &PatchParams::apply("bench").force(),
            &Patch::Apply(&template),
        )
        .await
        .expect("template");

    let counter = Arc::new(Counter::default());
    let config = cluster.admin().config().await.expect("config");
    let c = counter.clone();
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        let slot = if matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
            &c.reads
        } else {
            &c.writes
        };
        slot.fetch_add(1, Ordering::Relaxed);
        req
    });
    let counted = kube::client::ClientBuilder::try_from(config)
        .expect("client builder")
        .with_layer(&layer)
        .build();

    let backend = TemplateBackend::start(
        admin.clone(),
        NoLogin,
        TemplateBackendConfig {
            pretty_name: "Bench".into(),
            consumer_scope: Scope::Namespaced,
            cluster_scoped_isolation: ClusterScopedIsolation::Prefixed,
        },
    )
    .await
    .expect("backend");
    let external = ExternalCluster {
        server: cluster.url().into(),
        ca_pem: Some(cluster.ca_pem().into()),
        server_name: None,
    };
    let spaces = Arc::new(BindingSpaces::new(
        counted,
        BindingSpaceConfig::new("Bench", external),
    ));
    let keys = SessionKeys::generate();
    let router = Server::new(backend, spaces, ServerConfig::new(keys.clone())).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let session = |sid: &str, cid: &str| {
        let who = VerifiedIdentity::new("https://idp.bench", "bench-user");
        let s = Session::new(&who, Some("http://localhost:1/callback".into()), sid, cid);
        format!("klutch-bind-{sid}={}", s.seal(&keys))
    };
    // Wait until the catalogue has the CRD.
    let warm = session("warm", "cidwarm");
    for _ in 0..200 {
        let page = http
            .get(format!("{base}/resources?s=warm"))
            .header("cookie", &warm)
            .send()
            .await
            .unwrap();
        if bind_link(&page.text().await.unwrap(), "mangodbs").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bind = |sid: &str| format!("{base}/bind?s={sid}&resource=mangodbs&group=mangodb.com");

    println!("| request | n | latency p50 / p95 / p99 (ms) | requests/s |");
    println!("|---|---|---|---|");
    let export: Vec<_> = (0..2000)
        .map(|_| (format!("{base}/export"), String::new()))
        .collect();
    let (s, w) = sequential(&http, &export[..200], 200).await; // warm-up
    drop((s, w));
    let (s, w) = sequential(&http, &export, 200).await;
    report("/export, sequential", s, w);
    let (s, w) = concurrent(&http, &format!("{base}/export"), "", 4000, 16).await;
    report("/export, 16 in flight", s, w);

    // First binds: each a new identity, so each creates a binding space.
    let before = (
        counter.reads.load(Ordering::Relaxed),
        counter.writes.load(Ordering::Relaxed),
    );
    let first: Vec<_> = (0..20)
        .map(|i| {
            (
                bind(&format!("new{i}")),
                session(&format!("new{i}"), &format!("cid{i}")),
            )
        })
        .collect();
    let (s, w) = sequential(&http, &first, 302).await;
    let reads = counter.reads.load(Ordering::Relaxed) - before.0;
    let writes = counter.writes.load(Ordering::Relaxed) - before.1;
    report("/bind, new binding space", s, w);

    // Rebinds of one identity: the space exists.
    let _ = http
        .get(bind("warm"))
        .header("cookie", &warm)
        .send()
        .await
        .unwrap();
    let before = (
        counter.reads.load(Ordering::Relaxed),
        counter.writes.load(Ordering::Relaxed),
    );
    let again: Vec<_> = (0..200).map(|_| (bind("warm"), warm.clone())).collect();
    let (s, w) = sequential(&http, &again, 302).await;
    let rereads = counter.reads.load(Ordering::Relaxed) - before.0;
    let rewrites = counter.writes.load(Ordering::Relaxed) - before.1;
    report("/bind, existing space", s, w);
    let (s, w) = concurrent(&http, &bind("warm"), &warm, 200, 16).await;
    report("/bind, existing space, 16 in flight", s, w);

    println!();
    println!(
        "API requests per new binding space: {:.1} reads + {:.1} writes (incl. token polls); per rebind: {:.1} reads + {:.1} writes",
        reads as f64 / 20.0,
        writes as f64 / 20.0,
        rereads as f64 / 200.0,
        rewrites as f64 / 200.0
    );
}

//! The compositions rendered by Crossplane's own engine, without Docker or a cluster:
//! `crossplane render` (Crossplane v1.20.7) with function-patch-and-transform running as a
//! local process that render reaches through the `Development` runtime annotation. Both come
//! from `testbins/build.sh crossplane crossplane-fpt`.
//!
//! Every example claim of Klutch v1.5 and our own cases (all compositions, all parameters) are
//! turned into the composite resource Crossplane would create for them and rendered with the
//! committed composition from `crossplane-api/`; the output is an insta snapshot per case.
//!
//! `crossplane beta validate`, offline (Crossplane's core CRDs and the function's input CRD come
//! from the same Go builds), checks the package's XRDs and compositions against Crossplane's and
//! the function's schemas, and validates claims with Crossplane's own XRD-to-claim-CRD
//! conversion and CEL validator: it must agree with the apiserver tests on every case. And
//! `crossplane xpkg build` packages `crossplane-api/` (offline).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use klutch_a9s::claims::package;
use klutch_sdk::testenv::Binaries;
use serde_json::{Value, json};

mod claims_cases;

/// function-patch-and-transform as a local process; killed when dropped.
struct Function {
    child: Child,
    addr: SocketAddr,
}

impl Function {
    fn start(bin: &Path, log: &Path) -> Function {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let log = std::fs::File::create(log).expect("function log");
        let child = Command::new(bin)
            .arg("--insecure")
            .arg(format!("--address={addr}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut f = Function { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut wait = Duration::from_millis(20);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = f.child.try_wait() {
                panic!("function-patch-and-transform exited: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "function did not listen on {addr}"
            );
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(500));
        }
        f
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bin(name: &str) -> PathBuf {
    let dir = Binaries::find()
        .expect("test binaries (testbins/build.sh)")
        .dir()
        .to_path_buf();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `testbins/build.sh crossplane crossplane-fpt` (see docs/testenv.md)",
        path.display()
    );
    path
}

/// The composite resource Crossplane creates for `claim`, bound to `composition`.
fn composite_for(claim: &Value, composition: &str) -> Value {
    let name = claim["metadata"]["name"].as_str().expect("claim name");
    let namespace = claim["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut spec = claim["spec"].clone();
    spec["compositionRef"] = json!({"name": composition});
    json!({
        "apiVersion": "anynines.com/v1",
        "kind": format!("X{}", claim["kind"].as_str().expect("kind")),
        "metadata": {
            "name": format!("{name}-x7k2p"),
            "labels": {
                "crossplane.io/claim-name": name,
                "crossplane.io/claim-namespace": namespace,
            },
        },
        "spec": spec,
    })
}

fn default_composition(kind: &str) -> &'static str {
    let plural = format!("x{}s", kind.to_lowercase());
    package::claim_kinds()
        .into_iter()
        .find(|(p, _, _)| *p == plural)
        .map(|(_, _, default)| default)
        .unwrap_or_else(|| panic!("unknown claim kind {kind}"))
}

struct Renderer {
    crossplane: PathBuf,
    dir: tempfile::TempDir,
    functions: PathBuf,
    _function: Function,
}

impl Renderer {
    fn new() -> Renderer {
        let dir = tempfile::tempdir().expect("a temp dir");
        let function = Function::start(
            &bin("function-patch-and-transform"),
            &dir.path().join("function.log"),
        );
        let functions = dir.path().join("functions.yaml");
        let fn_yaml = json!({
            "apiVersion": "pkg.crossplane.io/v1beta1",
            "kind": "Function",
            "metadata": {
                "name": "function-patch-and-transform",
                "annotations": {
                    "render.crossplane.io/runtime": "Development",
                    "render.crossplane.io/runtime-development-target": function.addr.to_string(),
                },
            },
            "spec": {"package": "xpkg.upbound.io/crossplane-contrib/function-patch-and-transform:v0.10.9"},
        });
        std::fs::write(&functions, serde_saphyr::to_string(&fn_yaml).unwrap()).unwrap();
        Renderer {
            crossplane: bin("crossplane"),
            dir,
            functions,
            _function: function,
        }
    }

    /// Renders `claim` with its (or the default) composition from `crossplane-api/`.
    fn render(&self, claim: &Value) -> String {
        self.render_observed(claim, None)
    }

    /// Renders `claim` as if its composed resource existed as `observed`.
    fn render_observed(&self, claim: &Value, observed: Option<&Value>) -> String {
        let kind = claim["kind"].as_str().expect("kind");
        let composition = claim["spec"]["compositionRef"]["name"]
            .as_str()
            .unwrap_or_else(|| default_composition(kind))
            .to_string();
        let xr = composite_for(claim, &composition);
        let xr_file = self.dir.path().join("xr.yaml");
        std::fs::write(&xr_file, serde_saphyr::to_string(&xr).unwrap()).unwrap();
        let comp_file = repo().join(format!(
            "crossplane-api/apis/{}s/composition-{composition}.yaml",
            kind.to_lowercase()
        ));
        let mut cmd = Command::new(&self.crossplane);
        cmd.arg("render")
            .arg(&xr_file)
            .arg(&comp_file)
            .arg(&self.functions);
        if let Some(observed) = observed {
            let file = self.dir.path().join("observed.yaml");
            std::fs::write(&file, serde_saphyr::to_string(observed).unwrap()).unwrap();
            cmd.arg(format!("--observed-resources={}", file.display()));
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .expect("run crossplane render");
        assert!(
            out.status.success(),
            "crossplane render {} failed ({}):\n{}",
            comp_file.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }
}

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// The rendered composed resources (every document after the XR).
fn composed(rendered: &str) -> Vec<Value> {
    let mut docs: Vec<Value> = serde_saphyr::from_multiple::<Value>(rendered)
        .unwrap()
        .into_iter()
        .filter(|v| !v.is_null())
        .collect();
    docs.remove(0);
    docs
}

#[test]
fn klutch_example_claims_render() {
    let renderer = Renderer::new();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/klutch-v1.5/crossplane-api/examples");
    let mut files = Vec::new();
    let mut stack = vec![examples.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 46);
    for file in files {
        let rel = file
            .strip_prefix(&examples)
            .unwrap()
            .to_string_lossy()
            .to_string();
        for (i, claim) in yaml_docs(&file).into_iter().enumerate() {
            let rendered = renderer.render(&claim);
            let name = format!(
                "example-{}-{i}",
                rel.trim_end_matches(".yaml").replace('/', "-")
            );
            insta::assert_snapshot!(name, rendered);
        }
    }
}

#[test]
fn package_example_claims_render() {
    let renderer = Renderer::new();
    for (file, claims) in package::examples() {
        for claim in claims {
            let rendered = renderer.render(&claim);
            assert_eq!(composed(&rendered).len(), 1, "examples/{file}\n{rendered}");
            let name = format!(
                "package-example-{}-{}",
                file.trim_end_matches(".yaml"),
                claim["metadata"]["name"].as_str().unwrap()
            );
            insta::assert_snapshot!(name, rendered);
        }
    }
}

#[test]
fn every_composition_renders_with_all_fields() {
    let renderer = Renderer::new();
    let claim = |kind: &str, name: &str, spec: Value| json!({"apiVersion": "anynines.com/v1", "kind": kind, "metadata": {"name": name, "namespace": "shop"}, "spec": spec});
    let cases = vec![
        (
            "a8s-postgresql",
            claim(
                "PostgresqlInstance",
                "orders",
                json!({
            "service": "a9s-postgresql14", "plan": "postgresql-replica-big", "expose": "Internal",
            "parameters": {"maxConnections": 120, "tempFileLimit": -1, "trackIoTiming": "on", "archiveTimeout": 60,
                "statementTimeout": 3000, "walWriterDelay": 400, "maxLocksPerTransaction": 128, "maxReplicationSlots": 12,
                "maxWalSenders": 12, "synchronousCommit": "remote_apply", "sslCiphers": "HIGH", "sslMinProtocolVersion": "TLSv1.3",
                "clientMinMessages": "DEBUG1", "logMinMessages": "PANIC", "logMinErrorStatement": "ERROR", "logStatement": "all",
                "logErrorVerbosity": "VERBOSE"}}),
            ),
        ),
        (
            "a8s-postgresql-single-nano-defaults",
            claim(
                "PostgresqlInstance",
                "tiny",
                json!({"service": "a9s-postgresql13", "plan": "postgresql-single-nano"}),
            ),
        ),
        (
            "a9s-postgresql",
            claim(
                "PostgresqlInstance",
                "orders",
                json!({
            "service": "a9s-postgresql17", "plan": "postgresql-replica-small-ssl", "acceptsIncomplete": false,
            "compositionRef": {"name": "a9s-postgresql"},
            "parameters": {"dataChecksums": "enabled", "maxConnections": 120, "effectiveCacheSize": "1GB", "workMem": "4MB",
                "maintenanceWorkMem": "64MB", "tempFileLimit": 4096, "trackIoTiming": "off", "archiveTimeout": 60,
                "statementTimeout": 0, "idleInTransactionSessionTimeout": 1000, "rolePrivileges": ["CREATEDB"],
                "walLevelLogical": true, "walWriterDelay": 200, "maxReplicationSlots": 4, "maxWalSenders": 4,
                "synchronousCommit": "local", "clientMinMessages": "LOG", "logMinMessages": "NOTICE",
                "logMinErrorStatement": "WARNING", "logStatement": "ddl", "logErrorVerbosity": "TERSE"}}),
            ),
        ),
        (
            "a9s-mongodb",
            claim(
                "MongodbInstance",
                "events",
                json!({"service": "a9s-mongodb70", "plan": "mongodbsspl-replica-small-ssl",
            "parameters": {"setClusterParameter": {"changeStreamOptions": {"preAndPostImages": {"expireAfterSeconds": 3600}}}}}),
            ),
        ),
        (
            "a9s-mariadb",
            claim(
                "MariadbInstance",
                "shop-db",
                json!({"service": "a9s-mariadb1011", "plan": "mariadb-cluster-big-ssl",
            "parameters": {"binlogExpireDays": 3, "databases": ["a", "b"], "grantPerformanceSchemaPermissions": true}}),
            ),
        ),
        (
            "a9s-messaging",
            claim(
                "MessagingInstance",
                "queue",
                json!({"service": "a9s-messaging4", "plan": "messaging-cluster-small-ssl",
            "parameters": {"consumerTimeout": 3600000, "tlsProtocols": ["tlsv1.3"], "tlsCiphers": ["TLS_AES_256_GCM_SHA384"]}}),
            ),
        ),
        (
            "a9s-search",
            claim(
                "SearchInstance",
                "find",
                json!({"service": "a9s-search2", "plan": "search-cluster-big-ssl",
            "parameters": {"javaHeapspace": 1024, "javaMaxmetaspace": 512, "javaGarbageCollector": "UseG1GC",
                "tlsProtocols": ["TLSv1.2"], "tlsCiphers": ["TLS_AES_128_GCM_SHA256"]}}),
            ),
        ),
        (
            "a9s-logme2",
            claim(
                "Logme2Instance",
                "logs",
                json!({"service": "a9s-logme2", "plan": "logme-cluster-small-ssl",
            "parameters": {"javaHeapspace": 512, "javaMaxmetaspace": 256, "javaGarbageCollector": "UseSerialGC",
                "ismJobInterval": 5, "ismDeletionAfter": "30d", "ismJitter": 0.6, "opensearchTlsProtocols": ["TLSv1.3"],
                "opensearchTlsCiphers": ["x"], "fluentdUdp": 514, "fluentdTcp": 5140, "fluentdTls": 6514,
                "fluentdTlsCiphers": "HIGH", "fluentdTlsVersion": "TLS1_3", "fluentdTlsMinVersion": "TLS1_2",
                "fluentdTlsMaxVersion": "TLS1_3", "groks": [{"pattern": "%{WORD:a}"}]}}),
            ),
        ),
        (
            "a9s-prometheus",
            claim(
                "PrometheusInstance",
                "metrics",
                json!({"service": "a9s-prometheus", "plan": "promgraf2-single-big",
            "parameters": {"mappingStrictMatch": false, "scrapeConfigs": [{"job_name": "app", "static_configs": [{"targets": ["app:9090"]}]}]}}),
            ),
        ),
        (
            "a9s-keyvalue",
            claim(
                "KeyvalueInstance",
                "cache",
                json!({"service": "a9s-keyvalue8", "plan": "keyvalue-replica-big-ssl",
            "parameters": {"snapshot": "['save 900 1']", "replBacklogSize": "10mb", "minReplicasToWrite": 1, "minReplicasMaxLag": 10,
                "lazyfreeLazyEviction": "yes", "lazyfreeLazyExpire": "no", "maxmemory": "dynamic", "maxmemoryPolicy": "allkeys-lru",
                "maxmemorySamples": 5, "maxclients": 1000, "downAfterMilliseconds": 30000, "failoverTimeout": 180000,
                "hostnameResolution": "resolve-only", "tlsProtocols": "TLSv1.3", "tlsCiphers": "HIGH", "tlsCiphersuites": "TLS_AES_256_GCM_SHA384",
                "luaTimeLimit": 5000, "notifyKeyspaceEvents": "KEA"}}),
            ),
        ),
        (
            "a9s-servicebinding",
            claim(
                "ServiceBinding",
                "orders-app",
                json!({"instanceRef": "orders", "serviceInstanceType": "postgresql",
            "acceptsIncomplete": false, "compositionRef": {"name": "a9s-servicebinding"}}),
            ),
        ),
        (
            "a8s-servicebinding",
            claim(
                "ServiceBinding",
                "orders-app",
                json!({"instanceRef": "orders", "serviceInstanceType": "postgresql"}),
            ),
        ),
        (
            "a9s-backup",
            claim(
                "Backup",
                "nightly",
                json!({"instanceRef": "cache", "serviceInstanceType": "keyvalue", "compositionRef": {"name": "a9s-backup"}}),
            ),
        ),
        (
            "a8s-backup",
            claim(
                "Backup",
                "nightly",
                json!({"instanceRef": "orders", "serviceInstanceType": "postgresql"}),
            ),
        ),
        (
            "a9s-restore",
            claim(
                "Restore",
                "undo",
                json!({"backupRef": "nightly", "serviceInstanceType": "keyvalue", "compositionRef": {"name": "a9s-restore"}}),
            ),
        ),
        (
            "a8s-restore",
            claim(
                "Restore",
                "undo",
                json!({"backupRef": "nightly", "instanceRef": "orders", "serviceInstanceType": "postgresql"}),
            ),
        ),
    ];
    let mut rendered_compositions = std::collections::BTreeSet::new();
    let mut all_rendered = String::new();
    for (name, claim) in cases {
        let rendered = renderer.render(&claim);
        let resources = composed(&rendered);
        assert_eq!(
            resources.len(),
            1,
            "{name}: one composed resource\n{rendered}"
        );
        let r = &resources[0];
        // (render prints only the XR's status, so only composed resources are validated below)
        all_rendered.push_str("---\n");
        all_rendered.push_str(&serde_saphyr::to_string(r).unwrap());
        match name {
            "a9s-servicebinding" => {
                // the connection Secret of an a9s binding: <claim>-creds in the claim namespace
                assert_eq!(
                    r["spec"]["writeConnectionSecretToRef"],
                    json!({"name": "orders-app-creds", "namespace": "shop"})
                );
                assert_eq!(r["spec"]["forProvider"]["acceptsIncomplete"], json!(false));
                assert_eq!(
                    r["metadata"]["labels"]["klutch.io/instance-type"],
                    "postgresql"
                );
                assert_eq!(
                    r["spec"]["providerConfigRef"]["name"],
                    "postgresql-service-broker"
                );
            }
            "a8s-postgresql" => {
                let pg = &r["spec"]["forProvider"]["manifest"];
                assert_eq!(
                    pg["metadata"],
                    json!({"name": "orders", "namespace": "shop"})
                );
                assert_eq!(pg["spec"]["version"], json!(14));
                assert_eq!(pg["spec"]["replicas"], json!(3));
                assert_eq!(pg["spec"]["volumeSize"], "100Gi");
                assert_eq!(pg["spec"]["parameters"]["logMinMessages"], "panic");
            }
            _ => {}
        }
        rendered_compositions.insert(
            claim["spec"]["compositionRef"]["name"]
                .as_str()
                .unwrap_or_else(|| default_composition(claim["kind"].as_str().unwrap()))
                .to_string(),
        );
        insta::assert_snapshot!(format!("composition-{name}"), rendered);
    }
    assert_eq!(
        rendered_compositions.len(),
        klutch_a9s::claims::composition::all().len(),
        "every composition is rendered"
    );

    // The composed provider-anynines resources are valid for provider-anynines' CRDs (Klutch
    // v1.5's, which the Rust provider keeps). provider-kubernetes' Object CRD is not available
    // offline; those are reported as missing schemas.
    let provider_crds = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/klutch-v1.5/provider-anynines/package/crds");
    let validate = Validate::with_extensions(&[provider_crds]);
    let file = renderer.dir.path().join("all-rendered.yaml");
    std::fs::write(&file, &all_rendered).unwrap();
    let (_, out) = validate.run(&file);
    let failures: Vec<&str> = out.lines().filter(|l| l.starts_with("[x]")).collect();
    assert!(failures.is_empty(), "{out}");
    for kind in ["ServiceInstance", "ServiceBinding", "Backup", "Restore"] {
        let line = format!("dataservices.anynines.com/v1, Kind={kind}, ");
        assert!(
            out.lines()
                .any(|l| l.contains(&line) && l.ends_with("validated successfully")),
            "no validated {kind}:\n{out}"
        );
    }
    let missing = out.lines().filter(|l| l.starts_with("[!]")).count();
    assert!(
        out.lines().all(|l| !l.starts_with("[!]")
            || l.contains("kubernetes.crossplane.io/v1alpha1, Kind=Object")),
        "{out}"
    );
    assert_eq!(missing, 5, "the five a8s Objects\n{out}");
}

#[test]
fn provider_status_flows_back_to_the_claim() {
    let renderer = Renderer::new();
    let claim = json!({
        "apiVersion": "anynines.com/v1", "kind": "MariadbInstance",
        "metadata": {"name": "shop-db", "namespace": "shop"},
        "spec": {"service": "a9s-mariadb106", "plan": "mariadb-single-small"},
    });
    let conditions = json!([
        {"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2026-11-30T12:00:00Z"},
        {"type": "Synced", "status": "True", "reason": "ReconcileSuccess", "lastTransitionTime": "2026-11-30T12:00:00Z"},
    ]);
    let observed = json!({
        "apiVersion": "dataservices.anynines.com/v1",
        "kind": "ServiceInstance",
        "metadata": {
            "name": "shop-db-x7k2p-abcde",
            "annotations": {"crossplane.io/composition-resource-name": "a9s-mariadb"},
        },
        "spec": {"forProvider": {"serviceName": "a9s-mariadb106", "planName": "mariadb-single-small"}},
        "status": {
            "atProvider": {
                "state": "provisioned",
                "createdAt": "2026-11-30T11:50:00Z",
                "provisionedAt": "2026-11-30T11:58:00Z",
                "updatedAt": "2026-11-30T11:58:00Z",
                "instanceId": "d1a2",
            },
            "conditions": conditions,
        },
    });
    let rendered = renderer.render_observed(&claim, Some(&observed));
    let xr: Value = serde_saphyr::from_multiple::<Value>(&rendered)
        .unwrap()
        .remove(0);
    assert_eq!(
        xr["status"]["managed"],
        json!({
            "state": "provisioned",
            "createdAt": "2026-11-30T11:50:00Z",
            "provisionedAt": "2026-11-30T11:58:00Z",
            "updatedAt": "2026-11-30T11:58:00Z",
            "conditions": conditions,
        }),
        "{rendered}"
    );
    insta::assert_snapshot!(rendered);
}

/// `crossplane beta validate` against our XRDs, offline.
struct Validate {
    crossplane: PathBuf,
    extensions: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Validate {
    fn new() -> Validate {
        Validate::with_extensions(&[])
    }

    /// Also validates against the CRDs in `extra` (directories).
    fn with_extensions(extra: &[PathBuf]) -> Validate {
        let crossplane = bin("crossplane");
        let dir = crossplane.parent().unwrap().to_path_buf();
        // Crossplane's core CRDs where `beta validate` caches the Crossplane image's schemas, so
        // it does not try to download them.
        let cache = tempfile::tempdir().unwrap();
        let image = cache
            .path()
            .join("xpkg.crossplane.io/crossplane/crossplane@v1.20.7");
        std::fs::create_dir_all(&image).unwrap();
        let mut core = String::new();
        for crd in yaml_files(&dir.join("crossplane-crds")) {
            core.push_str(&std::fs::read_to_string(crd).unwrap());
            core.push_str("\n---\n");
        }
        std::fs::write(image.join("package.yaml"), core).unwrap();
        // extensions: our XRDs and compositions, and the function's input CRD
        let extensions = tempfile::tempdir().unwrap();
        let mut sources = yaml_files(&repo().join("crossplane-api/apis"));
        sources.extend(yaml_files(&dir.join("function-patch-and-transform-crds")));
        for d in extra {
            sources.extend(yaml_files(d));
        }
        for (i, file) in sources.iter().enumerate() {
            std::fs::copy(file, extensions.path().join(format!("{i}.yaml"))).unwrap();
        }
        Validate {
            crossplane,
            extensions,
            cache,
        }
    }

    /// Exit success and output of validating `resources` (a file or directory).
    fn run(&self, resources: &Path) -> (bool, String) {
        let out = Command::new(&self.crossplane)
            .args(["beta", "validate"])
            .arg(self.extensions.path())
            .arg(resources)
            .arg(format!("--cache-dir={}", self.cache.path().display()))
            .stdin(Stdio::null())
            .output()
            .expect("run crossplane beta validate");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("downloading"),
            "validate tried to download:\n{text}"
        );
        (out.status.success(), text)
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn crossplane_validates_the_package() {
    let validate = Validate::new();
    let (ok, out) = validate.run(&repo().join("crossplane-api/apis"));
    // 11 XRDs, 15 compositions and the 15 patch-and-transform inputs inside them
    assert!(
        ok && out
            .contains("Total 41 resources: 0 missing schemas, 41 success cases, 0 failure cases"),
        "{out}"
    );
}

#[test]
fn crossplane_agrees_with_the_apiserver_on_claims() {
    let validate = Validate::new();
    let dir = tempfile::tempdir().unwrap();
    let mut docs = String::new();
    let cases = claims_cases::create_cases();
    for (i, (_, doc, _)) in cases.iter().enumerate() {
        let mut doc = doc.clone();
        doc["metadata"]["name"] = json!(format!("case-{i}"));
        docs.push_str("---\n");
        docs.push_str(&serde_saphyr::to_string(&doc).unwrap());
    }
    let file = dir.path().join("claims.yaml");
    std::fs::write(&file, docs).unwrap();
    let (_, out) = validate.run(&file);
    let mut disagreements = Vec::new();
    for (i, (name, _, expected)) in cases.iter().enumerate() {
        let ok_line = format!(", case-{i} validated successfully");
        let err_prefix = format!(", case-{i} : ");
        let errors: Vec<&str> = out.lines().filter(|l| l.contains(&err_prefix)).collect();
        let accepted = out.lines().any(|l| l.ends_with(&ok_line));
        if name.starts_with("claim name longer than 63") {
            // `beta validate` checks the schema only; the apiserver checks metadata.name
            assert!(accepted, "{name}");
            continue;
        }
        match expected {
            None if accepted && errors.is_empty() => {}
            Some(part) if !accepted && errors.iter().any(|l| l.contains(part)) => {}
            _ => disagreements.push(format!(
                "{name}: expected {expected:?}, crossplane said {errors:?} (accepted: {accepted})"
            )),
        }
    }
    assert!(
        disagreements.is_empty(),
        "{}\n\n{out}",
        disagreements.join("\n")
    );

    // Klutch's own create cases
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/klutch-v1.5/test/validations");
    for claim in ["backup", "postgresql"] {
        for file in yaml_files(&reference.join(claim)) {
            let name = file.file_name().unwrap().to_str().unwrap().to_string();
            if name.starts_with("update-") {
                continue; // transition rules need the old object; the apiserver tests cover them
            }
            let (ok, out) = validate.run(&file);
            assert_eq!(ok, name.starts_with("create-valid-"), "{name}:\n{out}");
        }
    }
}

#[test]
fn crossplane_builds_the_package() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("anynines-dataservices.xpkg");
    // v1.20.7 skips the examples inside the package root by a substring match on the walked
    // (cleaned) paths, so the examples root must not contain `..`: run from the repository with
    // relative roots
    let repo = repo().canonicalize().unwrap();
    let out = Command::new(bin("crossplane"))
        .current_dir(&repo)
        .args(["xpkg", "build", "--package-root=crossplane-api"])
        .arg("--examples-root=crossplane-api/examples")
        .arg("-o")
        .arg(&out_file)
        .stdin(Stdio::null())
        .output()
        .expect("run crossplane xpkg build");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let size = std::fs::metadata(&out_file)
        .expect("the package file")
        .len();
    assert!(size > 4096, "{size} bytes");
}

//! `kubectl bind <url>` against a small in-test backend that implements the protocol's HTTP
//! side (`/export`, `/authorize`, `/bind`, and the device-authorization endpoints), with the
//! test driving the printed login URL like a browser. The apiservice step then runs against
//! real clusters, the test playing the backend's export-request controller.
//!
//! This is an extra layer; the end-to-end test with the reference backend, Dex and the
//! konnector drives the same entry point (`kubectl_bind::run` with `Io::login_urls`).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use common::{Verdict, backend_controller, fixture, io};
use klutch_sdk::api::APIServiceBinding;
use klutch_sdk::api::wire::encode_base64_url;
use klutch_sdk::testenv::browser::Browser;
use kube::api::Api;

/// How the fake backend behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Like a real backend.
    Good,
    /// `/bind` answers with another session id.
    WrongSession,
    /// The identity provider refuses the login.
    IdpError,
    /// `/device/authorize` answers 501 (the identity provider has no device flow).
    NoDeviceFlow,
}

struct Backend {
    base: String,
    mode: Mode,
    kubeconfig: Vec<u8>,
    /// sid → redirect URL (browser sessions) or `None` (device sessions).
    sessions: Mutex<HashMap<String, Option<String>>>,
    polls: Mutex<u32>,
}

type Shared = Arc<Backend>;

async fn export(State(b): State<Shared>) -> Response {
    axum::Json(serde_json::json!({
        "kind": "BindingProvider", "apiVersion": "v1alpha1", "providerPrettyName": "test backend",
        "version": "v1.6.0",
        "authenticationMethods": [
            {"method": "OAuth2CodeGrant", "oauth2CodeGrant": {"authenticatedURL": format!("{}/authorize", b.base)}},
            {"method": "OAuth2DeviceGrant", "oauth2DeviceGrant": {
                "deviceAuthorizationURL": format!("{}/device/authorize", b.base),
                "tokenURL": format!("{}/device/token", b.base)}}]
    }))
    .into_response()
}

async fn authorize(State(b): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (Some(port), Some(sid), Some(_cid)) = (q.get("p"), q.get("s"), q.get("c")) else {
        return (StatusCode::BAD_REQUEST, "missing p, s or c").into_response();
    };
    let redirect = format!("http://localhost:{port}/callback");
    if b.mode == Mode::IdpError {
        return Redirect::to(&format!(
            "{redirect}?error=access_denied&error_description=the+user+declined"
        ))
        .into_response();
    }
    b.sessions
        .lock()
        .unwrap()
        .insert(sid.clone(), Some(redirect));
    // The login and the click on "Bind" happen here in a real backend.
    Redirect::to(&format!(
        "/bind?s={sid}&group=mangodb.com&resource=mangodbs"
    ))
    .into_response()
}

fn binding_response(b: &Backend, sid: &str) -> serde_json::Value {
    use base64::Engine as _;
    let sid = if b.mode == Mode::WrongSession {
        "someoneElse"
    } else {
        sid
    };
    serde_json::json!({
        "kind": "BindingResponse", "apiVersion": "klutch.anynines.com/v1alpha1",
        "authentication": {"oauth2CodeGrant": {"sid": sid, "id": "https://idp.example.com/alice"}},
        "kubeconfig": base64::engine::general_purpose::STANDARD.encode(&b.kubeconfig),
        "requests": [{
            "kind": "APIServiceExportRequest", "apiVersion": "klutch.anynines.com/v1alpha1",
            "metadata": {"name": "mangodbs.mangodb.com"},
            "spec": {"resources": [{"group": "mangodb.com", "resource": "mangodbs", "permissionClaims": [
                {"resource": "secrets", "version": "v1", "required": false, "read": {},
                 "selector": {"names": ["*"], "namespaces": ["*"], "owner": "Provider"},
                 "onConflict": {"recreateWhenConsumerSideDeleted": true}}]}]},
            "status": {}}]
    })
}

fn logged_in(b: &Backend, headers: &HeaderMap, sid: &str) -> bool {
    let cookie = headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    b.sessions
        .lock()
        .unwrap()
        .get(sid)
        .is_some_and(|s| s.is_some())
        || cookie == format!("klutch-bind-{sid}=session-{sid}")
}

async fn bind(
    State(b): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sid = q.get("s").cloned().unwrap_or_default();
    if !logged_in(&b, &headers, &sid) {
        return (StatusCode::UNAUTHORIZED, "not logged in").into_response();
    }
    if (
        q.get("group").map(String::as_str),
        q.get("resource").map(String::as_str),
    ) != (Some("mangodb.com"), Some("mangodbs"))
    {
        return (StatusCode::BAD_REQUEST, "unknown resource").into_response();
    }
    let response = binding_response(&b, &sid);
    let redirect = b.sessions.lock().unwrap().get(&sid).cloned().flatten();
    match redirect {
        Some(redirect) => {
            let encoded = encode_base64_url(response.to_string().as_bytes());
            let url = url::Url::parse_with_params(&redirect, &[("response", encoded)]).unwrap();
            Redirect::to(url.as_str()).into_response()
        }
        None => axum::Json(response).into_response(),
    }
}

async fn resources(
    State(b): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sid = q.get("s").cloned().unwrap_or_default();
    if !logged_in(&b, &headers, &sid) {
        return (StatusCode::UNAUTHORIZED, "not logged in").into_response();
    }
    axum::Json(serde_json::json!({"resources": [
        {"group": "mangodb.com", "resource": "mangodbs", "versions": ["v1"], "scope": "Namespaced", "name": "mangodb"}]}))
    .into_response()
}

async fn device_authorize(
    State(b): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if b.mode == Mode::NoDeviceFlow {
        return (
            StatusCode::NOT_IMPLEMENTED,
            "this backend has no device flow",
        )
            .into_response();
    }
    let (Some(sid), Some(_cid)) = (form.get("s"), form.get("c")) else {
        return (StatusCode::BAD_REQUEST, "missing s or c").into_response();
    };
    b.sessions.lock().unwrap().insert(sid.clone(), None);
    axum::Json(serde_json::json!({
        "device_code": format!("device-{sid}"), "user_code": "ABCD-EFGH",
        "verification_uri": format!("{}/device", b.base),
        "verification_uri_complete": format!("{}/device?user_code=ABCD-EFGH", b.base),
        "expires_in": 60, "interval": 1}))
    .into_response()
}

async fn device_token(
    State(b): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let code = form.get("device_code").cloned().unwrap_or_default();
    let Some(sid) = code.strip_prefix("device-") else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let mut polls = b.polls.lock().unwrap();
    *polls += 1;
    if *polls == 1 {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "authorization_pending"})),
        )
            .into_response();
    }
    axum::Json(
        serde_json::json!({"session": format!("session-{sid}"), "sid": sid, "expires_in": 3600}),
    )
    .into_response()
}

/// Starts the fake backend; returns its base URL and the server task.
async fn start_backend(mode: Mode, kubeconfig: Vec<u8>) -> (String, common::AbortOnDrop) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let state = Arc::new(Backend {
        base: base.clone(),
        mode,
        kubeconfig,
        sessions: Mutex::new(HashMap::new()),
        polls: Mutex::new(0),
    });
    let app = axum::Router::new()
        .route("/export", get(export))
        .route("/authorize", get(authorize))
        .route("/bind", get(bind))
        .route("/resources", get(resources))
        .route("/device/authorize", post(device_authorize))
        .route("/device/token", post(device_token))
        .route(
            "/not-klutch",
            get(|| async { axum::response::Html("<html>hello</html>") }),
        )
        .route(
            "/request.yaml",
            get(|| async {
                "apiVersion: klutch.anynines.com/v1alpha1\nkind: APIServiceExportRequest\nmetadata: {name: mangodbs.mangodb.com}\nspec:\n  resources:\n  - {group: mangodb.com, resource: mangodbs}\n"
            }),
        )
        .route(
            "/export-v2",
            get(|| async {
                axum::Json(
                    serde_json::json!({"kind": "BindingProvider", "apiVersion": "v1alpha2",
                    "providerPrettyName": "x", "version": "v2.0.0", "authenticationMethods": []}),
                )
            }),
        )
        .with_state(state);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, common::AbortOnDrop(task))
}

fn args(f: &common::Fixture, url: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "kubectl-bind".to_string(),
        url.to_string(),
        "--kubeconfig".to_string(),
        f.app_kubeconfig.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Opens the login URL like a browser (following redirects) and returns the final page.
async fn browse(url: &str) -> (u16, String) {
    let page = Browser::new().unwrap().open(url).await.unwrap();
    (page.status, page.body)
}

#[tokio::test]
async fn bind_logs_in_through_the_browser_and_binds() {
    let f = fixture("cluster-browser").await;
    let _controller = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Succeed);
    let (base, _server) = start_backend(Mode::Good, f.provider_kubeconfig.clone()).await;
    let (mut cli_io, out, err) = io("v1.6.0", "");
    let (tx, mut urls) = tokio::sync::mpsc::unbounded_channel();
    cli_io.login_urls = Some(tx);
    let url = format!("{base}/export");
    let run = tokio::spawn(kubectl_bind::run(
        args(
            &f,
            &url,
            &[
                "--accept-claims=all",
                "--konnector-image",
                "registry.local/konnector:test",
            ],
        ),
        cli_io,
    ));
    let login = urls.recv().await.unwrap();
    assert!(
        login.starts_with(&format!("{base}/authorize?p=")),
        "{login}"
    );
    let (status, page) = browse(&login).await;
    assert_eq!(status, 200);
    assert_eq!(page, klutch_sdk::backend::client::callback::SUCCESS_PAGE);
    assert_eq!(run.await.unwrap(), 0, "{}", err.contents());
    let mut filters = common::filters();
    filters.push((r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:[PORT]"));
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!("browser_bind_stderr", err.contents());
        insta::assert_snapshot!("browser_bind_table", out.contents());
    });
    let binding = Api::<APIServiceBinding>::namespaced(f.app.clone(), "klutch-bind")
        .get("mangodbs.mangodb.com")
        .await
        .unwrap();
    assert_eq!(binding.spec.permission_claims.len(), 1);
    assert_eq!(
        common::kubeconfig_secrets(&f.app).await,
        vec![binding.spec.kubeconfig_secret_ref.name.clone()]
    );
    assert_eq!(
        common::konnector_image(&f.app).await.as_deref(),
        Some("registry.local/konnector:test")
    );
}

#[tokio::test]
async fn dry_run_prints_the_requests_and_stores_no_secret() {
    let f = fixture("cluster-dryrun").await;
    let (base, _server) = start_backend(Mode::Good, f.provider_kubeconfig.clone()).await;
    for (format, check) in [
        ("json", "\"apiVersion\": \"klutch.anynines.com/v1alpha1\""),
        ("yaml", "apiVersion: klutch.anynines.com/v1alpha1"),
    ] {
        // A display is there; the YAML run opens the browser (the JSON run is told not to).
        let (mut cli_io, out, err) = io("v1.6.0", "");
        cli_io.display = true;
        let opened = Arc::new(Mutex::new(Vec::<String>::new()));
        let record = opened.clone();
        cli_io.browser = Box::new(move |url| {
            record.lock().unwrap().push(url.to_string());
            true
        });
        let (tx, mut urls) = tokio::sync::mpsc::unbounded_channel();
        cli_io.login_urls = Some(tx);
        let open_flag = if format == "json" {
            "--open-browser=false"
        } else {
            "--open-browser"
        };
        let run = tokio::spawn(kubectl_bind::run(
            args(
                &f,
                &format!("{base}/export"),
                &["--dry-run", "-o", format, open_flag],
            ),
            cli_io,
        ));
        let login = urls.recv().await.unwrap();
        browse(&login).await;
        assert_eq!(run.await.unwrap(), 0, "{}", err.contents());
        let opened = opened.lock().unwrap().clone();
        if format == "json" {
            assert!(opened.is_empty());
        } else {
            assert_eq!(opened, [login]);
        }
        let printed = out.contents();
        assert!(printed.contains(check), "{printed}");
        assert!(printed.contains("mangodbs.mangodb.com"), "{printed}");
        if format == "json" {
            insta::assert_snapshot!("dry_run_json", printed);
        }
    }
    assert!(common::kubeconfig_secrets(&f.app).await.is_empty());
    assert!(common::provider_requests(&f).await.is_empty());
}

async fn failing_login(mode: Mode, extra: &[&str], drive: bool) -> (u8, String, bool) {
    let f = fixture("cluster-badlogin").await;
    let (base, _server) = start_backend(mode, f.provider_kubeconfig.clone()).await;
    let (mut cli_io, _, err) = io("v1.6.0", "");
    let (tx, mut urls) = tokio::sync::mpsc::unbounded_channel();
    cli_io.login_urls = Some(tx);
    let run = tokio::spawn(kubectl_bind::run(
        args(&f, &format!("{base}/export"), extra),
        cli_io,
    ));
    let login = urls.recv().await.unwrap();
    if drive {
        browse(&login).await;
    }
    let code = run.await.unwrap();
    let namespace_left = common::consumer_namespace_exists(&f.app).await;
    (code, err.contents(), namespace_left)
}

#[tokio::test]
async fn a_response_for_another_session_is_refused_and_rolled_back() {
    let (code, stderr, namespace_left) =
        failing_login(Mode::WrongSession, &["--accept-claims=all"], true).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("the login response belongs to another kubectl bind session"),
        "{stderr}"
    );
    assert!(
        !namespace_left,
        "klutch-bind was created by this run and removed"
    );
}

#[tokio::test]
async fn an_identity_provider_error_ends_the_wait_with_it() {
    let (code, stderr, namespace_left) =
        failing_login(Mode::IdpError, &["--accept-claims=all"], true).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("login failed: access_denied: the user declined"),
        "{stderr}"
    );
    assert!(!namespace_left);
}

#[tokio::test]
async fn nobody_logging_in_times_out() {
    let (code, stderr, namespace_left) =
        failing_login(Mode::Good, &["--accept-claims=all", "--timeout=2s"], false).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("timed out after 2s waiting for the login"),
        "{stderr}"
    );
    assert!(!namespace_left);
}

#[tokio::test]
async fn bad_provider_urls_fail_before_touching_the_cluster() {
    let f = fixture("cluster-badurl").await;
    let (base, _server) = start_backend(Mode::Good, f.provider_kubeconfig.clone()).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut errors = Vec::new();
    for url in [
        format!("http://127.0.0.1:{closed}/export"),
        format!("{base}/not-klutch"),
        format!("{base}/nothing-here"),
        format!("{base}/export-v2"),
    ] {
        let (cli_io, _, err) = io("v1.6.0", "");
        let code = kubectl_bind::run(args(&f, &url, &[]), cli_io).await;
        assert_eq!(code, 3, "{}", err.contents());
        assert_eq!(err.contents().lines().count(), 1, "{}", err.contents());
        errors.push(err.contents());
    }
    insta::with_settings!({filters => vec![(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"), (r"\(.*(Connection refused|connection refused).*\)", "(connection refused)")]}, {
        insta::assert_snapshot!("bad_provider_urls", errors.concat());
    });
    assert!(!common::consumer_namespace_exists(&f.app).await);
}

#[tokio::test]
async fn the_device_flow_binds_without_a_browser() {
    let f = fixture("cluster-device").await;
    let _controller = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Succeed);
    let (base, _server) = start_backend(Mode::Good, f.provider_kubeconfig.clone()).await;
    let (mut cli_io, _, err) = io("v1.6.0", "");
    let (tx, mut urls) = tokio::sync::mpsc::unbounded_channel();
    cli_io.login_urls = Some(tx);
    let run = tokio::spawn(kubectl_bind::run(
        args(
            &f,
            &format!("{base}/export"),
            &[
                "--non-interactive",
                "--resource",
                "mangodbs.mangodb.com",
                "--accept-claims=all",
                "--skip-konnector",
            ],
        ),
        cli_io,
    ));
    assert_eq!(
        urls.recv().await.unwrap(),
        format!("{base}/device?user_code=ABCD-EFGH")
    );
    assert_eq!(run.await.unwrap(), 0, "{}", err.contents());
    let stderr = err.contents();
    assert!(stderr.contains("shows the code\n\n\tABCD-EFGH"), "{stderr}");
    assert!(
        stderr.contains("✅ Created APIServiceBinding mangodbs.mangodb.com"),
        "{stderr}"
    );

    // A resource the provider does not offer: a usage error naming the offered ones.
    let (cli_io, _, err) = io("v1.6.0", "");
    let code = kubectl_bind::run(
        args(
            &f,
            &format!("{base}/export"),
            &[
                "--device",
                "--resource",
                "widgets.example.com",
                "--accept-claims=all",
            ],
        ),
        cli_io,
    )
    .await;
    assert_eq!(code, 2, "{}", err.contents());
    assert!(
        err.contents()
            .contains("--resource must be one of: mangodbs.mangodb.com"),
        "{}",
        err.contents()
    );
}

#[tokio::test]
async fn ctrl_c_in_the_real_binary_exits_130_and_leaves_the_cluster_as_it_was() {
    use std::io::BufRead as _;
    let f = fixture("cluster-sigint").await;
    let (base, _server) = start_backend(Mode::Good, f.provider_kubeconfig.clone()).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-bind"))
        .args(
            args(
                &f,
                &format!("{base}/export"),
                &["--open-browser=false", "--accept-claims=all"],
            )
            .into_iter()
            .skip(1),
        )
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let mut reader = std::io::BufReader::new(stderr);
        let mut line = String::new();
        // Read up to the login URL; the rest is collected after the signal.
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            seen.push(std::mem::take(&mut line));
            if seen.last().is_some_and(|l| l.contains("/authorize?p=")) {
                break;
            }
        }
        (seen, reader)
    })
    .await
    .unwrap();
    let (seen, mut reader) = lines;
    assert!(
        seen.concat().contains("Created klutch-bind namespace"),
        "{seen:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("↩️ Removed Namespace klutch-bind"), "{rest}");
    assert!(
        rest.contains("error: interrupted; the cluster was left as it was before this run"),
        "{rest}"
    );
    assert!(!common::consumer_namespace_exists(&f.app).await);
}

#[tokio::test]
async fn https_providers_are_verified_and_a_ca_file_adds_trust() {
    // The app cluster's apiserver stands in for an https server with a private CA.
    let f = fixture("cluster-tls").await;
    let url = format!("{}/export", f.env["app"].url());
    let (cli_io, _, err) = io("v1.6.0", "");
    assert_eq!(kubectl_bind::run(args(&f, &url, &[]), cli_io).await, 3);
    assert!(
        err.contents().contains("cannot reach"),
        "{}",
        err.contents()
    );
    let ca = f.dir.path().join("ca.pem");
    std::fs::write(&ca, f.env["app"].ca_pem()).unwrap();
    let (cli_io, _, err) = io("v1.6.0", "");
    let ca_flag = format!("--provider-ca-file={}", ca.display());
    assert_eq!(
        kubectl_bind::run(args(&f, &url, &[&ca_flag]), cli_io).await,
        3
    );
    // Trusted now: the server answers, and it is not a binding provider.
    assert!(
        err.contents()
            .contains("is not a klutch binding provider (HTTP 40"),
        "{}",
        err.contents()
    );
}

#[tokio::test]
async fn apiservice_takes_the_manifest_from_a_url() {
    let f = fixture("cluster-url").await;
    let _controller = backend_controller(f.provider.clone(), &f.cluster_ns, Verdict::Succeed);
    let (base, _server) = start_backend(Mode::Good, f.provider_kubeconfig.clone()).await;
    let remote = f.dir.path().join("provider.kubeconfig");
    std::fs::write(&remote, &f.provider_kubeconfig).unwrap();
    let app = f.app_kubeconfig.display().to_string();
    let remote = remote.display().to_string();
    let run = |url: String| {
        let (cli_io, out, err) = io("v1.6.0", "");
        let args = vec![
            "kubectl-bind".to_string(),
            "apiservice".into(),
            url,
            "--remote-kubeconfig".into(),
            remote.clone(),
            "--kubeconfig".into(),
            app.clone(),
            "--skip-konnector".into(),
        ];
        async move {
            (
                kubectl_bind::run(args, cli_io).await,
                out.contents(),
                err.contents(),
            )
        }
    };
    let (code, out, err) = run(format!("{base}/request.yaml")).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mangodbs.mangodb.com"), "{out}");
    let (code, _, err) = run(format!("{base}/missing.yaml")).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/missing.yaml: HTTP 404"), "{err}");
}

#[tokio::test]
async fn a_backend_without_device_support_is_a_clear_error() {
    let f = fixture("cluster-nodevice").await;
    let (base, _server) = start_backend(Mode::NoDeviceFlow, f.provider_kubeconfig.clone()).await;
    let (cli_io, _, err) = io("v1.6.0", "");
    let code = kubectl_bind::run(
        args(
            &f,
            &format!("{base}/export"),
            &[
                "--device",
                "--resource",
                "mangodbs.mangodb.com",
                "--accept-claims=all",
            ],
        ),
        cli_io,
    )
    .await;
    assert_eq!(code, 3, "{}", err.contents());
    assert!(
        err.contents()
            .contains("has no device flow; log in with a browser"),
        "{}",
        err.contents()
    );
    assert!(
        !common::consumer_namespace_exists(&f.app).await,
        "rolled back"
    );
}

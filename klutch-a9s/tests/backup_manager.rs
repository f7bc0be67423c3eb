//! Pins every Backup Manager request (method, path, headers, body) and the mapping of every
//! response row of spec 13 with insta snapshots; plus timeouts, TLS with a custom CA and
//! the client-side checks.

mod common;

use std::time::Duration;

use klutch_a9s::backup::{
    BackupConfigUpdate, BackupManager, BackupManagerError, Health, JobStatus,
};
use klutch_a9s::transport::{ApiErrorKind, CallError, HttpConfig};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{Exchange, requests, server};

const INSTANCE: &str = "inst/1 +x";

fn bm(server: &MockServer) -> BackupManager {
    BackupManager::new(HttpConfig::new(format!("{}/", server.uri())).basic_auth("admin", "pw"))
        .expect("client builds")
}

fn describe(e: &BackupManagerError) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        s.push_str(&format!(": {x}"));
        src = x.source();
    }
    if let Some(a) = e.api() {
        s.push_str(&format!(
            " | kind={:?} code={:?} description={:?}",
            a.kind, a.code, a.description
        ));
    }
    s
}

fn show<T: std::fmt::Debug>(r: Result<T, BackupManagerError>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({})", describe(&e)),
    }
}

macro_rules! case {
    ($out:ident, $name:expr, $status:expr, $body:expr, |$bm:ident| $call:expr) => {{
        let server = server($status, $body).await;
        let $bm = bm(&server);
        let r = $call.await;
        $out.push(Exchange {
            case: $name.to_owned(),
            response: format!("{} {}", $status, $body),
            requests: requests(&server).await,
            result: show(r),
        });
    }};
}

const BACKUP: &str = r#"{"id": 5, "size": 1184, "status": "done", "triggered_at": "2023-04-11T08:52:48.209Z", "finished_at": "2023-04-11T08:53:16.411Z", "downloadable": false}"#;
const RESTORE: &str = r#"{"id": 7, "backup_id": 5, "status": "running", "triggered_at": "2023-05-01T01:30:28.300Z", "finished_at": null}"#;

#[tokio::test]
async fn backups() {
    let mut out = Vec::new();
    case!(
        out,
        "create 201",
        201,
        r#"{"id": 5, "message": "job queued"}"#,
        |b| b.create_backup(INSTANCE)
    );
    case!(out, "create 200", 200, r#"{"id": "6"}"#, |b| b
        .create_backup(INSTANCE));
    case!(
        out,
        "create 404",
        404,
        r#"{"error": "NotFound", "description": "Instance not found"}"#,
        |b| b.create_backup(INSTANCE)
    );
    case!(out, "create 201 invalid JSON", 201, r#"{"id": "#, |b| b
        .create_backup(INSTANCE));
    case!(
        out,
        "create 201 without id",
        201,
        r#"{"message": "x"}"#,
        |b| b.create_backup(INSTANCE)
    );
    case!(out, "create 500 empty", 500, "", |b| b
        .create_backup(INSTANCE));
    case!(out, "create 204 unexpected", 204, "", |b| b
        .create_backup(INSTANCE));
    case!(
        out,
        "list 200",
        200,
        &format!("[{BACKUP}, {{\"id\": 6, \"status\": \"queued\", \"finished_at\": null}}]"),
        |b| b.list_backups(INSTANCE)
    );
    case!(out, "list 200 empty", 200, "[]", |b| b
        .list_backups(INSTANCE));
    case!(out, "list 200 null", 200, "null", |b| b
        .list_backups(INSTANCE));
    case!(out, "list 200 object", 200, "{}", |b| b
        .list_backups(INSTANCE));
    case!(
        out,
        "list 404",
        404,
        r#"{"error": "InstanceNotFound", "description": "no such instance"}"#,
        |b| b.list_backups(INSTANCE)
    );
    case!(out, "get 200", 200, BACKUP, |b| b.get_backup(INSTANCE, 5));
    case!(
        out,
        "get 200 unknown status",
        200,
        r#"{"id": 5, "status": "paused", "extra": [1]}"#,
        |b| b.get_backup(INSTANCE, 5)
    );
    case!(
        out,
        "get 404",
        404,
        r#"{"error": "NotFound", "description": "Backup not found"}"#,
        |b| b.get_backup(INSTANCE, 99)
    );
    case!(out, "delete 200", 200, r#"{"message": "deleted"}"#, |b| b
        .delete_backup(INSTANCE, 5));
    case!(out, "delete 200 empty", 200, "", |b| b
        .delete_backup(INSTANCE, 5));
    case!(
        out,
        "delete 423",
        423,
        r#"{"error": "Locked", "description": "Backup is used by a running restore"}"#,
        |b| b.delete_backup(INSTANCE, 5)
    );
    case!(
        out,
        "delete 400",
        400,
        r#"{"error": "BadRequest", "description": "Deleting the backup files from the storage failed"}"#,
        |b| b.delete_backup(INSTANCE, 5)
    );
    case!(out, "delete 404", 404, r#"{"error": "NotFound"}"#, |b| b
        .delete_backup(INSTANCE, 5));
    case!(
        out,
        "delete 502 html",
        502,
        "<html>bad gateway</html>",
        |b| b.delete_backup(INSTANCE, 5)
    );
    insta::assert_yaml_snapshot!("backups", out);
}

#[tokio::test]
async fn restores() {
    let mut out = Vec::new();
    case!(out, "create 202", 202, r#"{"id": 7}"#, |b| b
        .create_restore(INSTANCE, 5));
    case!(
        out,
        "create 409",
        409,
        r#"{"error": "RestoreInProgress", "description": "A restore is already running"}"#,
        |b| b.create_restore(INSTANCE, 5)
    );
    case!(
        out,
        "create 422",
        422,
        r#"{"error": "BackupNonRestorableState", "description": "Backup is not in state done"}"#,
        |b| b.create_restore(INSTANCE, 5)
    );
    case!(
        out,
        "create 404",
        404,
        r#"{"error": "NotFound", "description": "Backup not found"}"#,
        |b| b.create_restore(INSTANCE, 5)
    );
    case!(out, "create 202 null", 202, "null", |b| b
        .create_restore(INSTANCE, 5));
    case!(out, "list 200", 200, &format!("[{RESTORE}]"), |b| b
        .list_restores(INSTANCE));
    case!(
        out,
        "list 503",
        503,
        r#"{"description": "maintenance"}"#,
        |b| b.list_restores(INSTANCE)
    );
    case!(out, "get 200", 200, RESTORE, |b| b.get_restore(INSTANCE, 7));
    case!(
        out,
        "get 200 done",
        200,
        r#"{"id": 7, "backup_id": 5, "status": "done", "finished_at": "2023-05-01T01:31:00.000Z"}"#,
        |b| b.get_restore(INSTANCE, 7)
    );
    case!(out, "get 404", 404, r#"{"error": "NotFound"}"#, |b| b
        .get_restore(INSTANCE, 8));
    insta::assert_yaml_snapshot!("restores", out);
}

#[tokio::test]
async fn config_and_health() {
    let mut out = Vec::new();
    case!(
        out,
        "get config 200",
        200,
        r#"{"min_backup_count": 3, "retention_time": 10, "min_encryption_key_length": 8, "exclude_from_auto_backup": false, "backup_type": "full"}"#,
        |b| b.get_config(INSTANCE)
    );
    case!(
        out,
        "get config 404",
        404,
        r#"{"error": "InstanceNotFound"}"#,
        |b| b.get_config(INSTANCE)
    );
    case!(
        out,
        "update config 200",
        200,
        r#"{"message": "updated"}"#,
        |b| b.update_config(
            INSTANCE,
            &BackupConfigUpdate::new()
                .encryption_key("0123456789")
                .exclude_from_auto_backup(true)
                .credentials_updated_by_user(false)
        )
    );
    case!(
        out,
        "update config 201 one field",
        201,
        r#"{"message": "updated"}"#,
        |b| b.update_config(
            INSTANCE,
            &BackupConfigUpdate::new().exclude_from_auto_backup(false)
        )
    );
    case!(
        out,
        "update config 404",
        404,
        r#"{"error": "NotFound", "description": "Instance not found"}"#,
        |b| b.update_config(
            INSTANCE,
            &BackupConfigUpdate::new().exclude_from_auto_backup(false)
        )
    );
    case!(out, "update config empty (not sent)", 200, "{}", |b| b
        .update_config(INSTANCE, &BackupConfigUpdate::new()));
    case!(out, "empty instance id (not sent)", 200, "{}", |b| b
        .get_config(""));
    case!(out, "health 200", 200, "[]", |b| b.health());
    case!(out, "health 204", 204, "", |b| b.health());
    case!(out, "health 401", 401, "", |b| b.health());
    case!(out, "health 503", 503, "", |b| b.health());
    case!(out, "health v68 endpoint", 200, "{}", |b| b
        .with_health_endpoint("v2/healthy")
        .health());
    insta::assert_yaml_snapshot!("config_and_health", out);
}

#[tokio::test]
async fn every_call_uses_basic_auth_and_no_version_header() {
    let server = server(200, "{}").await;
    let b = bm(&server);
    let _ = b.get_config("i").await;
    let _ = b.delete_backup("i", 1).await;
    let _ = b.health().await;
    for r in requests(&server).await {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some("Basic YWRtaW46cHc="),
            "{r:?}"
        );
        assert!(!r.headers.contains_key("x-broker-api-version"), "{r:?}");
        assert!(!r.headers.contains_key("content-type"), "{r:?}");
    }
}

#[tokio::test]
async fn timeouts_and_connect_errors_are_typed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/instances/i/backups"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("[]")
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let b = BackupManager::new(HttpConfig::new(server.uri()).timeout(Duration::from_millis(200)))
        .unwrap();
    let e = b.list_backups("i").await.unwrap_err();
    assert!(
        matches!(&e, BackupManagerError::ListBackups { instance_id, source: CallError::Timeout { .. } } if instance_id == "i"),
        "{e:?}"
    );

    // Nothing listens on port 9 of localhost.
    let b = BackupManager::new(HttpConfig::new("http://127.0.0.1:9")).unwrap();
    let e = b.health().await.unwrap_err();
    assert!(matches!(e.call_error(), CallError::Connect { .. }), "{e:?}");
    assert_eq!(e.kind(), None);
}

#[tokio::test]
async fn error_helpers() {
    let server = server(423, r#"{"error": "Locked", "description": "in use"}"#).await;
    let e = bm(&server).delete_backup("i", 3).await.unwrap_err();
    assert_eq!(e.kind(), Some(ApiErrorKind::Locked));
    assert!(!e.is_not_found());
    assert_eq!(
        e.api().and_then(|a| a.description.as_deref()),
        Some("in use")
    );
    let server = server_404().await;
    let e = bm(&server).get_backup("i", 3).await.unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.call_error().status(), Some(404));
}

async fn server_404() -> MockServer {
    let s = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(404))
        .mount(&s)
        .await;
    s
}

#[test]
fn debug_never_shows_the_password() {
    let cfg = HttpConfig::new("https://bm.example").basic_auth("admin", "hunter2");
    assert!(!format!("{cfg:?}").contains("hunter2"));
    let b = BackupManager::new(cfg).unwrap();
    let d = format!("{b:?}");
    assert!(d.contains("admin") && !d.contains("hunter2"), "{d}");
}

#[test]
fn job_status_is_lenient() {
    assert_eq!(JobStatus::parse("queued"), JobStatus::Queued);
    assert_eq!(JobStatus::parse(""), JobStatus::Unknown(String::new()));
    assert!(!Health::Unhealthy { status: 503 }.is_healthy());
    assert!(Health::Healthy.is_healthy());
}

mod tls {
    //! A one-shot HTTPS server on a certificate signed by a test CA, to prove that a custom
    //! CA bundle is used (and the system roots are not).

    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    use klutch_a9s::backup::{BackupManager, Health};
    use klutch_a9s::transport::{CallError, HttpConfig};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    struct Pki {
        ca_pem: String,
        server: rustls::ServerConfig,
    }

    fn pki() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        Pki {
            ca_pem: ca.pem(),
            server,
        }
    }

    /// Serves one TLS connection with `200 []`; returns the port.
    fn serve_once(config: rustls::ServerConfig) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let Ok(conn) = rustls::ServerConnection::new(Arc::new(config)) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tls.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]",
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        });
        port
    }

    #[tokio::test]
    async fn custom_ca_is_trusted() {
        let pki = pki();
        let port = serve_once(pki.server);
        let b = BackupManager::new(
            HttpConfig::new(format!("https://localhost:{port}"))
                .ca_bundle_pem(pki.ca_pem.into_bytes()),
        )
        .unwrap();
        assert_eq!(b.health().await.unwrap(), Health::Healthy);
    }

    #[tokio::test]
    async fn unknown_ca_is_rejected() {
        let pki = pki();
        let other = self::pki();
        let port = serve_once(pki.server);
        let b = BackupManager::new(
            HttpConfig::new(format!("https://localhost:{port}"))
                .ca_bundle_pem(other.ca_pem.into_bytes()),
        )
        .unwrap();
        let e = b.health().await.unwrap_err();
        assert!(
            matches!(
                e.call_error(),
                CallError::Connect { .. } | CallError::Transport { .. }
            ),
            "{e:?}"
        );
    }
}

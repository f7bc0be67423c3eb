//! The binary as a process against a real PostgreSQL server: it listens where told, answers the
//! clients provider-anynines uses, and stops cleanly on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use klutch_a9s::broker::{A9sBroker, match_plan, match_service};
use klutch_a9s::transport::HttpConfig;
use klutch_sdk::testenv::free_port;
use klutch_sdk::testenv::postgres::Postgres;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_a9s_apis_and_stops_on_sigterm() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pg = Postgres::builder().start().await.expect("start PostgreSQL");
    let port = free_port().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_a9s-dev-broker"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--username",
            "admin",
        ])
        .env("A9S_DEV_BROKER_POSTGRES_URL", pg.url())
        .env("A9S_DEV_BROKER_PASSWORD", "secret")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a9s-dev-broker");
    let a9s = A9sBroker::new(
        HttpConfig::new(format!("http://127.0.0.1:{port}")).basic_auth("admin", "secret"),
    )
    .unwrap();
    let mut catalog = None;
    for _ in 0..300 {
        if let Ok(c) = a9s.osb().catalog().await {
            catalog = Some(c.outcome);
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the broker exited early"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let catalog = catalog.expect("the broker answers within 30 s");
    let s = match_service(&catalog, "a9s-postgresql15").unwrap();
    match_plan(s, "postgresql-replica-big").unwrap();
    assert!(matches!(
        a9s.health().await.unwrap(),
        klutch_a9s::backup::Health::Healthy
    ));
    let e = a9s.instance("unknown").await.expect_err("404");
    assert!(format!("{e:?}").contains("404"), "{e:?}");
    assert!(a9s.list_instances().await.unwrap().is_empty());

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let log = String::from_utf8_lossy(&status.stderr);
    assert!(
        log.contains("listening") && log.contains("shutting down"),
        "{log}"
    );
    assert!(!log.contains("secret"), "no secret in the logs: {log}");
}

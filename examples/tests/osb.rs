//! `examples/osb.rs` against the crate's in-process fake broker, synchronous and asynchronous:
//! the lifecycle ends with nothing left at the broker, and an asynchronous run polls every
//! operation.

#[allow(dead_code)]
#[path = "../osb.rs"]
mod osb;

use std::time::Duration;

use klutch_osb::testing::{FakeBroker, FakeBrokerConfig, Mode, Route};

async fn run(mode: Mode) -> FakeBroker {
    let fake = FakeBroker::start(FakeBrokerConfig {
        mode,
        ..FakeBrokerConfig::default()
    })
    .await
    .expect("fake broker starts");
    let client = fake.client_builder().build().expect("client builds");
    let report = osb::lifecycle(client, "fake-db", "small", "inst-1")
        .await
        .expect("the lifecycle succeeds");
    assert!(report.dashboard_url.is_some(), "{report:?}");
    assert!(!report.credential_keys.is_empty(), "{report:?}");
    assert!(!fake.has_binding("inst-1", "binding-1"));
    assert!(!fake.has_instance("inst-1"));
    fake
}

#[tokio::test]
async fn lifecycle_against_a_synchronous_broker() {
    let fake = run(Mode::Sync).await;
    assert_eq!(fake.count(Route::InstanceLastOperation), 0);
    assert_eq!(fake.count(Route::BindingLastOperation), 0);
}

#[tokio::test]
async fn lifecycle_against_an_asynchronous_broker() {
    let fake = run(Mode::Async {
        duration: Duration::from_millis(50),
        retry_after: Some(1),
    })
    .await;
    // provision + deprovision polled; bind + unbind polled; the credentials fetched.
    assert!(fake.count(Route::InstanceLastOperation) >= 2);
    assert!(fake.count(Route::BindingLastOperation) >= 2);
    assert_eq!(fake.count(Route::FetchBinding), 1);
    let put = fake
        .requests()
        .into_iter()
        .find(|r| r.route == Route::Provision)
        .expect("a provision");
    let body = put.body.expect("a body");
    assert_eq!(body["organization_guid"], "cluster-1");
    assert_eq!(body["space_guid"], "team-a");
}

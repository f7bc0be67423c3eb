//! In-process fakes for tests (the `testing` feature).
//!
//! * [`FakeBroker`]: an OSB broker (axum) with a configurable catalog, synchronous or
//!   asynchronous operations with configurable durations, `Retry-After`, fault injection and a
//!   request log.
//! * [`server`]: the fake-HTTP core it is built on (server start/stop, request log, fault
//!   injection, basic auth, JSON answers), for fakes of other HTTP APIs; `klutch-a9s` builds
//!   its Backup Manager and broker-extension fakes on it.
//!
//! ```no_run
//! # async fn run() -> klutch_osb::Result<()> {
//! use std::time::Duration;
//! use klutch_osb::testing::{FakeBroker, FakeBrokerConfig, Mode};
//! let broker = FakeBroker::start(FakeBrokerConfig {
//!     mode: Mode::Async { duration: Duration::from_millis(200), retry_after: Some(1) },
//!     ..FakeBrokerConfig::default()
//! })
//! .await?;
//! let client = broker.client_builder().build()?;
//! let catalog = client.catalog().await?.outcome;
//! assert_eq!(catalog.services.len(), 1);
//! # Ok(()) }
//! ```

mod broker;
pub mod server;

pub use broker::{FakeBroker, FakeBrokerConfig, Mode, RecordedRequest, Route, default_catalog};
pub use server::FaultAction;

//! # klutch-osb
//!
//! A complete [Open Service Broker API](https://github.com/openservicebrokerapi/servicebroker)
//! v2.17 client (with 2.11–2.16 compatibility), used by klutch's `provider-anynines` and
//! embeddable in any async Rust program.
//!
//! * Every operation: catalog; provision, update, deprovision, fetch instance, instance
//!   last_operation; bind (and binding rotation), unbind, fetch binding, binding
//!   last_operation ([`Client`]).
//! * Results typed per status code ([`ProvisionOutcome`], [`UpdateOutcome`],
//!   [`DeleteOutcome`], [`BindOutcome`]): "done" and "started" can't be confused.
//! * One error type ([`Error`]) classifying broker answers by status and `error` code.
//! * Version gates ([`ApiVersion`], [`Feature`]), typed originating identity
//!   ([`OriginatingIdentity`]) and automatic request identity.
//! * A cancellable, deadline-aware poller honouring `Retry-After` ([`Poller`]); every reply
//!   to an operation that started asynchronously carries its [`PollTarget`].
//! * Orphan mitigation as a pure decision ([`orphan_mitigation`]).
//! * With the `testing` feature: an in-process fake broker (`testing::FakeBroker`).
//!
//! The normative description is `spec/osb-a9s.md` of the klutch project.
//!
//! # Embedding: TLS
//!
//! The crate's own HTTP clients carry an explicit rustls configuration on the `ring` provider
//! ([`tls::client_config`]); nothing needs a process-wide `CryptoProvider` and the crate
//! installs none. It enables reqwest's `rustls-no-provider` feature and rustls' `ring`. A
//! host's own `reqwest::Client` keeps working with reqwest's default features (aws-lc-rs),
//! with `native-tls`, or with `rustls-no-provider` as before. A host whose reqwest has **no**
//! TLS feature gets rustls as its default backend without a provider, and
//! `reqwest::Client::new()` panics: enable a TLS feature (reqwest's default does) or build
//! that client with `tls_backend_preconfigured(klutch_osb::tls::client_config(None, false,
//! None)?)`. The crate's `docs/osb.md` explains why the crate does not add a fallback provider.
//!
//! ```no_run
//! use klutch_osb::{CallOptions, Client, Context, Deadline, Poller, ProvisionRequest};
//!
//! # async fn run() -> klutch_osb::Result<()> {
//! let client = Client::builder("https://broker.example.com").basic_auth("admin", "secret").build()?;
//! let catalog = client.catalog().await?.outcome;
//! // From now on every call checks the catalog's gates (bindable, *_retrievable, ...).
//! client.set_catalog(catalog.clone());
//! let (service, plan) = catalog.plan_by_name("postgresql", "small").expect("plan exists");
//! let req = ProvisionRequest::new(&service.id, &plan.id).context(Context::kubernetes("team-a", "cluster-1"));
//! let reply = client.provision("instance-1", &req, &CallOptions::new().asynchronous()).await?;
//! // A 202 reply says how to poll it.
//! if let Some(target) = reply.poll_target {
//!     let deadline = Deadline::from_now(None, plan.max_polling_duration());
//!     let done = Poller::new(client.clone()).wait(&target, deadline, None).await?;
//!     println!("provision finished: {:?}", done.outcome);
//! }
//! # Ok(()) }
//! ```
//!
//! `examples/osb.rs` shows the whole lifecycle with the polling-mode calls
//! (`Poller::provision_and_wait` and friends) and orphan mitigation.

pub mod catalog;
pub mod client;
pub mod context;
pub mod error;
pub mod gate;
pub mod identity;
pub mod model;
pub mod orphan;
pub mod outcome;
pub mod parse;
pub mod poll;
pub mod target;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod version;

pub use catalog::{Catalog, CatalogIssue, MaintenanceInfo, Plan, Schemas, Service};
pub use client::{
    Auth, CallOptions, Client, ClientBuilder, LastOperationQuery, LastOperationReply, Strictness,
};
pub use context::Context;
pub use error::{
    AcceptedStep, BrokerError, Error, ErrorCode, ErrorKind, Gate, ProtocolViolation, Result,
};
pub use identity::{OriginatingIdentity, RequestIdentity};
pub use model::{
    BindRequest, BindResource, BindingBody, BindingMetadata, Credentials, Endpoint, InstanceBody,
    InstanceMetadata, LastOperation, OperationKey, OperationState, PreviousValues,
    ProvisionRequest, RotateRequest, UpdateRequest, VolumeMount,
};
pub use orphan::{OmOperation, OmPolicy, OmResult, OrphanMitigation, orphan_mitigation};
pub use outcome::{
    AsyncOperation, BindOutcome, DeleteOutcome, ProvisionOutcome, Reply, UpdateOutcome,
};
pub use parse::ParseError;
pub use poll::{
    Completion, Deadline, OperationKind, PollConfig, PollOutcome, PollStep, PollTarget, Poller,
    WaitResult,
};
pub use version::{ApiVersion, Feature, UnknownVersion};

// Re-exported so users can cancel `Poller::wait` without naming tokio-util themselves.
pub use tokio_util::sync::CancellationToken;

//! # klutch-a9s
//!
//! anynines-specific clients for klutch, built on [`klutch_osb`]:
//!
//! * [`broker`]: the a9s Service Broker's extension endpoints (instance record and list,
//!   health, fetch instance with parameters, operation polling) and the a9s id and naming
//!   conventions ([`broker::A9sBroker`]).
//! * [`backup`]: the a9s Backup Manager API — backups, restores, backup configuration and
//!   health ([`backup::BackupManager`]), with errors classified by status that keep the
//!   server's message.
//! * [`credentials`]: typed binding credentials for the eight a9s data services and their
//!   connection endpoints ([`credentials::ServiceCredentials`]).
//! * [`flatten`]: the one flattening of credentials into `<claim>-creds` Secret keys
//!   ([`flatten::flatten`]).
//! * [`transport`]: connection settings shared by both clients ([`transport::HttpConfig`]):
//!   basic auth, custom CA, timeouts; TLS runs on an explicit `ring` provider, so no
//!   process-global rustls CryptoProvider is needed.
//! * [`claims`]: typed claims of Klutch's Crossplane configuration package (`anynines.com/v1`:
//!   `PostgresqlInstance`, `ServiceBinding`, `Backup`, ...) and the generator of the package
//!   itself (XRDs, compositions, `crossplane.yaml`).
//! * With the `provider` feature: the Crossplane provider for anynines data services
//!   (`provider`): the `dataservices.anynines.com/v1` kinds and their controllers, built on
//!   `klutch_sdk::crossplane`.
//! * With the `testing` feature: a fake Backup Manager and a fake a9s broker (`testing`).
//!
//! The normative description is sections 12–15 of `spec/osb-a9s.md` of the klutch project.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use klutch_a9s::backup::BackupManager;
//! use klutch_a9s::credentials::{DataServiceKind, ParseMode, ServiceCredentials};
//! use klutch_a9s::flatten::flatten;
//! use klutch_a9s::transport::HttpConfig;
//! use klutch_osb::{BindOutcome, BindRequest, CallOptions};
//!
//! let broker = klutch_a9s::broker::A9sBroker::new(
//!     HttpConfig::new("https://pg-broker.example.com").basic_auth("admin", "secret"),
//! )?;
//! let req = BindRequest::new("service-id", "plan-id");
//! if let BindOutcome::Created(binding) =
//!     broker.osb().bind("instance-1", "binding-1", &req, &CallOptions::new()).await?.outcome
//! {
//!     let creds = ServiceCredentials::from_binding(DataServiceKind::Postgresql, &binding, ParseMode::Lenient)?;
//!     println!("endpoints: {:?}", creds.connection_endpoints());
//!     let secret = flatten(binding.credentials.as_ref().map(|c| c.expose()).unwrap_or(&Default::default()));
//!     println!("Secret keys: {:?}", secret.keys().collect::<Vec<_>>());
//! }
//! let bm = BackupManager::new(
//!     HttpConfig::new("https://pg-backup-manager.example.com").basic_auth("admin", "secret"),
//! )?;
//! let backup = bm.create_backup("instance-1").await?;
//! println!("backup {} started", backup.id);
//! # Ok(()) }
//! ```

pub mod backup;
pub mod broker;
pub mod claims;
pub mod credentials;
#[cfg(feature = "devbroker")]
pub mod devbroker;
pub mod flatten;
#[cfg(feature = "provider")]
pub mod provider;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;

pub use klutch_osb;

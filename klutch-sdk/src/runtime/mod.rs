//! What every klutch binary shares (cargo feature `runtime`): the process-level plumbing around
//! an engine, so a binary is only flags and wiring. [`duration`], [`report`] and [`signals`] have no
//! dependencies beyond tokio and are there without the feature (a CLI such as `kubectl bind`
//! parses its `--timeout` with them).
//!
//! | module | what |
//! |---|---|
//! | [`lease`] | leader election on a `coordination.k8s.io/v1` Lease: run work while leader, stop it on loss, with a [`LeaderState`](lease::LeaderState) for health checks |
//! | [`health`] | the `/healthz` + `/metrics` router ([`Endpoints`](health::Endpoints)), extensible with a binary's own routes, and [`serve`](health::serve) / [`Server`](health::Server) |
//! | [`logging`] | text or JSON logs to stderr, no ANSI colour when stderr is not a terminal, `RUST_LOG` overriding a default filter |
//! | [`report`] | an error and its sources on one line ([`error_chain`](report::error_chain)) |
//! | [`signals`] | a future resolving on SIGTERM or SIGINT |
//! | [`duration`] | Go-style durations (`90s`, `1h30m`, `500ms`, bare seconds) as a clap `value_parser` |
//! | [`client`] | a [`kube::Client`] whose requests are counted per cluster and HTTP method; user agent and timeouts |
//! | [`tls`] | an [`axum::serve::Listener`] handing out finished TLS streams, and a rustls config from PEM files |
//! | [`http_metrics`] | axum middleware counting requests and their latency by route and status |
//!
//! A binary typically wires them like this:
//!
//! ```no_run
//! # #[cfg(feature = "runtime")] {
//! use std::time::Duration;
//! use klutch_sdk::runtime::{health, lease::LeaderElection, logging::{LogFormat, Logging}, signals};
//!
//! # async fn demo(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! Logging::new("info").format(LogFormat::Json).init()?;
//! let election = LeaderElection::new(client, "default", "my-controller")
//!     .with_identity("my-controller-0")
//!     .with_duration(Duration::from_secs(15))
//!     .with_grace(Duration::from_secs(5));
//! let probes = health::Endpoints::new()
//!     .healthz(health::HealthChecks::new().leader_election(election.state()))
//!     .router();
//! health::serve("0.0.0.0:8080".parse()?, probes).await?;
//! election
//!     .run(signals::shutdown(), |stop| async move {
//!         // Reconcile until `stop` is cancelled.
//!         stop.cancelled().await;
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! # }
//! ```

#[cfg(feature = "runtime")]
pub mod client;
pub mod duration;
#[cfg(feature = "runtime")]
pub mod health;
#[cfg(feature = "runtime")]
pub mod http_metrics;
#[cfg(feature = "runtime")]
pub mod lease;
#[cfg(feature = "runtime")]
pub mod logging;
pub mod report;
pub mod signals;
#[cfg(feature = "runtime")]
pub mod tls;

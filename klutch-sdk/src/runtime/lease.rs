//! Leader election on a `coordination.k8s.io/v1` Lease (with
//! [kube-lease-manager](https://docs.rs/kube-lease-manager)): several replicas campaign, one holds
//! the Lease and works, the others wait to take over.
//!
//! [`LeaderElection`] is configured like its Lease (namespace, name, identity, duration, grace,
//! field manager) and then runs work while leader:
//!
//! - [`run`](LeaderElection::run): one term. Waits for leadership, runs the work, and when the
//!   Lease is lost stops the work and returns [`Error::Lost`], so the process can exit and its pod
//!   restart clean. A shutdown signal before or during the term ends it with `Ok`.
//! - [`run_forever`](LeaderElection::run_forever): term after term. The work is stopped when the
//!   Lease is lost and started again when this replica is elected again.
//!
//! The work is a closure receiving a [`CancellationToken`]: it is cancelled when the work must
//! stop, and the election waits for the work to return before it gives the Lease up.
//!
//! While leader, the election also reads the Lease every [`RENEWAL_CHECK`] and records the renewals
//! it sees in its [`LeaderState`]. A leader that has not seen its renewal for longer than the
//! Lease duration + [`RENEWAL_SLACK`] cannot be sure that nobody else works: its state is degraded
//! ([`LeaderState::healthy`]) and the term ends as lost. A replica that is not leader is healthy.
//!
//! ```no_run
//! use std::time::Duration;
//! use klutch_sdk::runtime::{lease::{Error, LeaderElection}, signals};
//!
//! # async fn demo(client: kube::Client) -> Result<(), Error> {
//! let election = LeaderElection::new(client, "kube-system", "my-agent")
//!     .with_identity("my-agent-7d9f")
//!     .with_duration(Duration::from_secs(15))
//!     .with_grace(Duration::from_secs(5));
//! let health = election.state(); // read by /healthz
//! match election
//!     .run(signals::shutdown(), |stop| async move {
//!         // Work until told to stop.
//!         stop.cancelled().await;
//!     })
//!     .await
//! {
//!     Ok(_) => Ok(()),                    // signalled: exit 0
//!     Err(lost @ Error::Lost { .. }) => Err(lost), // exit non-zero, the pod restarts
//!     Err(e) => Err(e),
//! }
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
pub use tokio_util::sync::CancellationToken;

/// The default Lease duration.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(15);
/// The default grace: the holder renews this long before the Lease expires.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// How often a leader reads its Lease to see its renewals (default of
/// [`with_renewal_check`](LeaderElection::with_renewal_check)).
pub const RENEWAL_CHECK: Duration = Duration::from_secs(2);
/// How much older than the Lease duration a leader's last seen renewal may be before it counts
/// as degraded.
pub const RENEWAL_SLACK: Duration = Duration::from_secs(3);
/// Length of the random identity used when none is given (as kube-lease-manager's).
const RANDOM_IDENTITY_LEN: usize = 32;

/// Why a term ended as lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LossReason {
    /// The lease manager saw another holder (or could no longer renew).
    Taken,
    /// No renewal of this replica was seen for longer than the Lease duration + [`RENEWAL_SLACK`].
    RenewalsStopped,
}

impl std::fmt::Display for LossReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LossReason::Taken => "another replica holds it",
            LossReason::RenewalsStopped => "its renewals stopped",
        })
    }
}

/// Leader-election failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Duration and grace do not fit: both whole seconds, `0 < grace < duration`.
    #[error(
        "invalid timing of Lease {namespace}/{name}: duration {duration:?} and grace {grace:?} must be whole seconds with 0 < grace < duration"
    )]
    Timing {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// The duration given.
        duration: Duration,
        /// The grace given.
        grace: Duration,
    },
    /// Setting up the lease manager failed (it reads or creates the Lease).
    #[error("set up leader election on Lease {namespace}/{name}")]
    Setup {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// The error.
        #[source]
        source: LeaseManagerError,
    },
    /// The lease manager stopped on its own.
    #[error("leader election on Lease {namespace}/{name} stopped")]
    Stopped {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// What stopped it, when it said.
        #[source]
        source: Option<LeaseManagerError>,
    },
    /// This replica lost the Lease while leader; its work has been stopped.
    #[error("lost the leader Lease {namespace}/{name}: {reason}")]
    Lost {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// Why.
        reason: LossReason,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The election as a health check sees it; shared between the election and the `/healthz`
/// handler ([`HealthChecks::leader_election`](super::health::HealthChecks::leader_election)).
#[derive(Debug, Default)]
pub struct LeaderState {
    leader: AtomicBool,
    /// Unix seconds of the last renewal seen on the Lease while leader.
    last_renew: AtomicI64,
    /// Seconds a renewal may be old before the leader is degraded; 0: renewals are not watched.
    max_age: AtomicI64,
}

impl LeaderState {
    /// Whether this replica holds the Lease (and runs its work).
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// The last renewal of this replica seen on the Lease, while leader.
    pub fn last_renewal(&self) -> Option<Timestamp> {
        if !self.is_leader() {
            return None;
        }
        Timestamp::from_second(self.last_renew.load(Ordering::Acquire)).ok()
    }

    /// `false` only for a leader whose last seen renewal is older than the Lease duration +
    /// [`RENEWAL_SLACK`]; a non-leader is healthy, and so is a leader whose renewals are not
    /// watched.
    pub fn healthy(&self) -> bool {
        self.healthy_at(Timestamp::now().as_second())
    }

    fn healthy_at(&self, now: i64) -> bool {
        let max_age = self.max_age.load(Ordering::Acquire);
        !self.is_leader() || max_age == 0 || !self.stale_at(now, max_age)
    }

    fn stale_at(&self, now: i64, max_age: i64) -> bool {
        now - self.last_renew.load(Ordering::Acquire) > max_age
    }

    /// Became leader at `now`; `max_age` 0 when renewals are not watched.
    fn enter(&self, now: i64, max_age: i64) {
        self.last_renew.store(now, Ordering::Release);
        self.max_age.store(max_age, Ordering::Release);
        self.leader.store(true, Ordering::Release);
    }

    fn renewed(&self, at: i64) {
        self.last_renew.fetch_max(at, Ordering::AcqRel);
    }

    fn leave(&self) {
        self.leader.store(false, Ordering::Release);
    }
}

type OnChange = Arc<dyn Fn(bool) + Send + Sync>;

/// Leader election on one Lease; see the [module documentation](self).
#[derive(Clone)]
pub struct LeaderElection {
    client: kube::Client,
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
    grace: Duration,
    field_manager: Option<String>,
    renewal_check: Option<Duration>,
    state: Arc<LeaderState>,
    on_change: Option<OnChange>,
}

impl std::fmt::Debug for LeaderElection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElection")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("duration", &self.duration)
            .field("grace", &self.grace)
            .field("field_manager", &self.field_manager)
            .field("renewal_check", &self.renewal_check)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// How a term ended without error.
enum Term<T> {
    /// Shut down before this replica became leader.
    NotElected,
    /// The work ran and returned `T`; `shut_down` when the shutdown signal stopped it.
    Worked { output: T, shut_down: bool },
}

impl LeaderElection {
    /// Campaigns for Lease `name` in `namespace` with a random identity, [`DEFAULT_DURATION`],
    /// [`DEFAULT_GRACE`], kube-lease-manager's field manager, renewals read every
    /// [`RENEWAL_CHECK`].
    pub fn new(
        client: kube::Client,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        use rand::Rng as _;
        let identity = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(RANDOM_IDENTITY_LEN)
            .map(char::from)
            .collect();
        LeaderElection {
            client,
            namespace: namespace.into(),
            name: name.into(),
            identity,
            duration: DEFAULT_DURATION,
            grace: DEFAULT_GRACE,
            field_manager: None,
            renewal_check: Some(RENEWAL_CHECK),
            state: Arc::default(),
            on_change: None,
        }
    }

    /// The holder identity of this replica (unique per replica, e.g. the pod name).
    pub fn with_identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    /// How long the Lease is valid after a renewal (whole seconds).
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// The holder renews this long before the Lease expires (whole seconds, less than the
    /// duration).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The field manager of the Lease writes (default: kube-lease-manager's).
    pub fn with_field_manager(mut self, field_manager: impl Into<String>) -> Self {
        self.field_manager = Some(field_manager.into());
        self
    }

    /// How often a leader reads its Lease to see its renewals; `None` stops watching them (the
    /// leader then counts as healthy, and only the lease manager reports a loss).
    pub fn with_renewal_check(mut self, every: Option<Duration>) -> Self {
        self.renewal_check = every;
        self
    }

    /// Called with `true` when this replica becomes leader (before the work starts) and with
    /// `false` when it stops being leader (after the work returned), e.g. to set a gauge.
    pub fn on_change(mut self, f: impl Fn(bool) + Send + Sync + 'static) -> Self {
        self.on_change = Some(Arc::new(f));
        self
    }

    /// The state that a health check reads; the same for every clone and term.
    pub fn state(&self) -> Arc<LeaderState> {
        self.state.clone()
    }

    /// The holder identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The Lease as `namespace/name`.
    pub fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// One term: waits until this replica holds the Lease, then runs `work` until it returns,
    /// `shutdown` resolves, or the Lease is lost; then gives the Lease up.
    ///
    /// The work's token is cancelled on shutdown or loss, and the work is awaited before the
    /// Lease is released. Returns `Ok(None)` when shut down before being elected, `Ok(Some(_))`
    /// with the work's output after a shutdown or when the work returned on its own, and
    /// [`Error::Lost`] when the Lease was lost.
    pub async fn run<S, W, F, T>(&self, shutdown: S, work: W) -> Result<Option<T>>
    where
        S: Future,
        W: FnOnce(CancellationToken) -> F,
        F: Future<Output = T>,
    {
        let shutdown = std::pin::pin!(shutdown);
        Ok(match self.term(shutdown, work).await? {
            Term::NotElected => None,
            Term::Worked { output, .. } => Some(output),
        })
    }

    /// Term after term until `shutdown` resolves (`Ok`) or the election fails: `work` runs
    /// whenever this replica is leader, is stopped (its token cancelled, then awaited) when the
    /// Lease is lost, and runs again once this replica is elected again. Work that returns on its
    /// own ends the term: the Lease is released and the campaign starts over.
    pub async fn run_forever<S, W, F, T>(&self, shutdown: S, mut work: W) -> Result<()>
    where
        S: Future,
        W: FnMut(CancellationToken) -> F,
        F: Future<Output = T>,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            match self.term(shutdown.as_mut(), &mut work).await {
                Ok(
                    Term::NotElected
                    | Term::Worked {
                        shut_down: true, ..
                    },
                ) => return Ok(()),
                Ok(Term::Worked { .. }) => {
                    tracing::info!(identity = %self.identity, lease = %self.lease(), "the work returned; campaigning again");
                }
                Err(Error::Lost { reason, .. }) => {
                    tracing::warn!(identity = %self.identity, lease = %self.lease(), %reason, "lost the Lease; campaigning again");
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn manager(&self) -> Result<LeaseManager> {
        let whole = |d: Duration| d.subsec_nanos() == 0;
        let (duration, grace) = (self.duration.as_secs(), self.grace.as_secs());
        if !whole(self.duration) || !whole(self.grace) || grace == 0 || grace >= duration {
            return Err(Error::Timing {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                duration: self.duration,
                grace: self.grace,
            });
        }
        let mut builder = LeaseManagerBuilder::new(self.client.clone(), &self.name)
            .with_namespace(&self.namespace)
            .with_identity(&self.identity)
            .with_duration(duration)
            .with_grace(grace);
        if let Some(field_manager) = &self.field_manager {
            builder = builder.with_field_manager(field_manager);
        }
        builder.build().await.map_err(|source| Error::Setup {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        })
    }

    fn changed(&self, leader: bool) {
        if let Some(f) = &self.on_change {
            f(leader);
        }
    }

    fn lost(&self, reason: LossReason) -> Error {
        Error::Lost {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            reason,
        }
    }

    /// The manager task ended on its own: its error, if it has one.
    async fn stopped(
        &self,
        task: tokio::task::JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    ) -> Error {
        Error::Stopped {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source: task.await.ok().and_then(|r| r.err()),
        }
    }

    /// Closes the watch and waits (at most the grace) for the manager to release the Lease.
    async fn release(
        &self,
        leader: tokio::sync::watch::Receiver<bool>,
        task: tokio::task::JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    ) {
        drop(leader);
        match tokio::time::timeout(self.grace, task).await {
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, lease = %self.lease(), "releasing the Lease failed");
            }
            Err(_) => {
                tracing::warn!(lease = %self.lease(), "releasing the Lease takes long; going on")
            }
            _ => {}
        }
    }

    /// While leader, records the renewals of this replica seen on the Lease; resolves when none
    /// was seen for longer than the duration + [`RENEWAL_SLACK`]. Never resolves when renewals
    /// are not watched.
    async fn renewals_stop(&self, max_age: i64) {
        let Some(every) = self.renewal_check else {
            return std::future::pending().await;
        };
        let api = Api::<Lease>::namespaced(self.client.clone(), &self.namespace);
        loop {
            tokio::time::sleep(every).await;
            if let Ok(Some(lease)) = api.get_opt(&self.name).await
                && let Some(spec) = lease.spec
                && spec.holder_identity.as_deref() == Some(self.identity.as_str())
                && let Some(renew) = spec.renew_time
            {
                self.state.renewed(renew.0.as_second());
            }
            if self.state.stale_at(Timestamp::now().as_second(), max_age) {
                return;
            }
        }
    }

    async fn term<S, W, F, T>(&self, mut shutdown: Pin<&mut S>, work: W) -> Result<Term<T>>
    where
        S: Future,
        W: FnOnce(CancellationToken) -> F,
        F: Future<Output = T>,
    {
        let manager = self.manager().await?;
        let (mut leader, task) = manager.watch().await;
        tracing::info!(identity = %self.identity, lease = %self.lease(), "campaigning for leadership");

        // Wait for leadership (or the signal).
        loop {
            if *leader.borrow_and_update() {
                break;
            }
            tokio::select! {
                _ = shutdown.as_mut() => {
                    self.release(leader, task).await;
                    return Ok(Term::NotElected);
                }
                r = leader.changed() => if r.is_err() {
                    return Err(self.stopped(task).await);
                },
            }
        }

        tracing::info!(identity = %self.identity, lease = %self.lease(), "became the leader; starting work");
        let max_age = if self.renewal_check.is_some() {
            i64::try_from((self.duration + RENEWAL_SLACK).as_secs()).unwrap_or(i64::MAX)
        } else {
            0
        };
        self.state.enter(Timestamp::now().as_second(), max_age);
        self.changed(true);

        enum Stop<T> {
            Done(T),
            ShutDown,
            Lost(LossReason),
            ManagerStopped,
        }
        let token = CancellationToken::new();
        let mut work = std::pin::pin!(work(token.clone()));
        let stop = tokio::select! {
            output = work.as_mut() => Stop::Done(output),
            _ = shutdown.as_mut() => Stop::ShutDown,
            () = self.renewals_stop(max_age) => Stop::Lost(LossReason::RenewalsStopped),
            stopped = async {
                loop {
                    if leader.changed().await.is_err() {
                        return true;
                    }
                    if !*leader.borrow_and_update() {
                        return false;
                    }
                }
            } => if stopped { Stop::ManagerStopped } else { Stop::Lost(LossReason::Taken) },
        };
        // Stop working first, then give up the Lease.
        let (output, outcome) = match stop {
            Stop::Done(output) => (output, Ok(false)),
            Stop::ShutDown => {
                token.cancel();
                (work.await, Ok(true))
            }
            Stop::Lost(reason) => {
                tracing::warn!(identity = %self.identity, lease = %self.lease(), %reason, "lost the Lease; stopping work");
                token.cancel();
                (work.await, Err(reason))
            }
            Stop::ManagerStopped => {
                tracing::warn!(identity = %self.identity, lease = %self.lease(), "leader election stopped; stopping work");
                token.cancel();
                let _ = work.await;
                self.state.leave();
                self.changed(false);
                return Err(self.stopped(task).await);
            }
        };
        self.state.leave();
        self.changed(false);
        self.release(leader, task).await;
        match outcome {
            Ok(shut_down) => Ok(Term::Worked { output, shut_down }),
            Err(reason) => Err(self.lost(reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_leader_is_healthy() {
        let state = LeaderState::default();
        assert!(!state.is_leader());
        assert!(state.healthy_at(1_000_000));
        assert_eq!(state.last_renewal(), None);
    }

    #[test]
    fn a_leader_is_degraded_when_its_renewal_is_older_than_duration_plus_slack() {
        // Duration 15 s + slack 3 s, as the konnector has it.
        let state = LeaderState::default();
        state.enter(1_000, 18);
        assert!(state.is_leader());
        assert!(state.healthy_at(1_018));
        assert!(!state.healthy_at(1_019));
        state.renewed(1_010);
        assert!(state.healthy_at(1_028));
        assert!(!state.healthy_at(1_029));
        // An older renewal never moves the clock back.
        state.renewed(1_005);
        assert_eq!(state.last_renewal().unwrap().as_second(), 1_010);
        state.leave();
        assert!(state.healthy_at(5_000));
        assert_eq!(state.last_renewal(), None);
    }

    #[test]
    fn a_leader_without_renewal_watch_is_healthy() {
        let state = LeaderState::default();
        state.enter(1_000, 0);
        assert!(state.healthy_at(1_000_000));
    }

    #[tokio::test]
    async fn timings_are_checked_before_any_api_call() {
        // A client for a server that is never contacted.
        let config = kube::Config::new("https://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        for (duration, grace) in [(15, 15), (15, 0), (5, 10)] {
            let election = LeaderElection::new(client.clone(), "ns", "lease")
                .with_duration(Duration::from_secs(duration))
                .with_grace(Duration::from_secs(grace));
            let err = election
                .run(std::future::pending::<()>(), |_| async {})
                .await;
            assert!(
                matches!(err, Err(Error::Timing { .. })),
                "{duration}/{grace}: {err:?}"
            );
        }
        let election =
            LeaderElection::new(client, "ns", "lease").with_duration(Duration::from_millis(1500));
        assert!(matches!(
            election
                .run(std::future::pending::<()>(), |_| async {})
                .await,
            Err(Error::Timing { .. })
        ));
    }

    #[tokio::test]
    async fn defaults_and_identity() {
        let config = kube::Config::new("https://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let a = LeaderElection::new(client.clone(), "ns", "lease");
        let b = LeaderElection::new(client.clone(), "ns", "lease");
        assert_eq!(a.identity().len(), RANDOM_IDENTITY_LEN);
        assert_ne!(a.identity(), b.identity(), "random identities differ");
        let c = a.clone().with_identity("pod-0");
        assert_eq!(c.identity(), "pod-0");
        assert_eq!(c.lease(), "ns/lease");
        assert!(
            Arc::ptr_eq(&a.state(), &c.state()),
            "clones share their state"
        );
        let text = format!("{c:?}");
        assert!(text.contains("pod-0") && text.contains("15s"), "{text}");
    }
}

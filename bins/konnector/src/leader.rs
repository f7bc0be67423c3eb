//! Leader election on a Lease in the app cluster (kube-lease-manager): duration 15 s, renewed
//! 5 s before it expires. Only the holder runs controllers; leadership lost (or not renewed for
//! longer than the lease duration) ends the process with a non-zero exit so the pod restarts.
//!
//! The health check reads the Lease itself: a leader whose `renewTime` is older than the lease
//! duration + 3 s is degraded; a non-leader is healthy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};

/// Lease duration in seconds.
pub const LEASE_DURATION: u64 = 15;
/// Renew this many seconds before expiry.
pub const LEASE_GRACE: u64 = 5;
/// Slack of the health check.
pub const HEALTH_SLACK: i64 = 3;

/// Leader-election failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Setting up the lease manager failed.
    #[error("set up leader election on Lease {namespace}/{name}")]
    Setup {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// The error.
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
}

/// Shared view of the election for the health check.
#[derive(Debug, Default)]
pub struct LeaderState {
    /// Whether this replica believes it holds the Lease.
    pub leader: AtomicBool,
    /// Unix seconds of the last renewal seen on the Lease while leader (0: none).
    pub last_renew: AtomicI64,
}

impl LeaderState {
    /// `ok` or `degraded` per §5.2.
    pub fn healthy(&self) -> bool {
        if !self.leader.load(Ordering::Acquire) {
            return true;
        }
        let last = self.last_renew.load(Ordering::Acquire);
        let now = jiff::Timestamp::now().as_second();
        now - last <= LEASE_DURATION as i64 + HEALTH_SLACK
    }
}

/// A lease manager for `name` in `namespace` with identity `identity`.
pub async fn manager(
    client: kube::Client,
    namespace: &str,
    name: &str,
    identity: &str,
) -> Result<LeaseManager, Error> {
    LeaseManagerBuilder::new(client, name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_DURATION)
        .with_grace(LEASE_GRACE)
        .with_field_manager(format!("konnector-{identity}"))
        .build()
        .await
        .map_err(|source| Error::Setup {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        })
}

/// While leader, reads the Lease every 2 s and records the holder's renewals in `state`.
/// Resolves when this replica is leader but has not seen its renewal for longer than the lease
/// duration: it can no longer be sure nobody else works.
pub async fn watch_renewals(
    api: Api<Lease>,
    name: String,
    identity: String,
    state: Arc<LeaderState>,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if !state.leader.load(Ordering::Acquire) {
            continue;
        }
        if let Ok(Some(lease)) = api.get_opt(&name).await
            && let Some(spec) = lease.spec
            && spec.holder_identity.as_deref() == Some(identity.as_str())
            && let Some(renew) = spec.renew_time
        {
            state
                .last_renew
                .fetch_max(renew.0.as_second(), Ordering::AcqRel);
        }
        let last = state.last_renew.load(Ordering::Acquire);
        if jiff::Timestamp::now().as_second() - last > LEASE_DURATION as i64 + HEALTH_SLACK {
            return;
        }
    }
}

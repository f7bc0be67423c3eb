//! The command line (spec 1.2): names and environment variables are a compatibility contract
//! with Klutch v1.5's provider; the flags after `--broker-timeout` are new.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use klutch_a9s::provider::Options;
use klutch_sdk::runtime::duration;

/// Parses `:8081` (all interfaces) or `host:port`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    full.parse()
        .map_err(|e| format!("invalid address {s:?} (expected :PORT or HOST:PORT): {e}"))
}

/// What to do with failed provisions (spec 4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OrphanMitigation {
    /// Keep the failed instance visible; deleting the claim deprovisions it.
    Off,
    /// Deprovision a failed provision automatically and provision again under a new id.
    Auto,
}

const LONG_ABOUT: &str = "The Crossplane provider for anynines data services.

It turns dataservices.anynines.com/v1 ServiceInstance, ServiceBinding, Backup and Restore objects into \
Open Service Broker and a9s Backup Manager calls, one ProviderConfig per endpoint. It replaces Klutch \
v1.5's Go provider in place: same API, flags, labels, annotations and health port.

Probes: GET /healthz and /backend-health on --health-probe-bind-address. Metrics: GET /metrics on \
--metrics-bind-address. Logs are JSON on stderr.";

/// The provider's command line.
#[derive(Debug, Clone, Parser)]
#[command(name = "provider-anynines", version, about, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Verbose (debug) logging.
    #[arg(short, long)]
    pub debug: bool,
    /// Elect a leader through the Lease `crossplane-leader-election-provider-anynines` (lease 60 s,
    /// renew deadline 50 s), so several replicas can run.
    #[arg(short = 'l', long, env = "LEADER_ELECTION")]
    pub leader_election: bool,
    /// Where the probe server listens (`/healthz`, `/backend-health`).
    #[arg(long, default_value = ":8081", value_parser = parse_addr)]
    pub health_probe_bind_address: SocketAddr,
    /// Where the Prometheus metrics server listens (`/metrics`).
    #[arg(long, default_value = ":8080", value_parser = parse_addr, env = "METRICS_BIND_ADDRESS")]
    pub metrics_bind_address: SocketAddr,
    /// Full resync period.
    #[arg(short, long, default_value = "1h", value_parser = duration::parse)]
    pub sync: Duration,
    /// Requeue interval after a successful reconcile (±10 % jitter).
    #[arg(long, default_value = "1m", value_parser = duration::parse)]
    pub poll: Duration,
    /// Concurrent reconciles per controller.
    #[arg(long, default_value_t = 10)]
    pub max_reconcile_rate: u16,
    /// The provider's namespace (leader-election Lease).
    #[arg(long, default_value = "crossplane-system", env = "POD_NAMESPACE")]
    pub namespace: String,
    /// Honour `publishConnectionDetailsTo` (not supported yet: only
    /// `writeConnectionSecretToRef` is written; see docs/provider-anynines.md).
    #[arg(long, env = "ENABLE_EXTERNAL_SECRET_STORES")]
    pub enable_external_secret_stores: bool,
    /// Honour non-default `managementPolicies` (e.g. observe-only imports).
    #[arg(long, env = "ENABLE_MANAGEMENT_POLICIES")]
    pub enable_management_policies: bool,
    /// Timeout of one service broker request.
    #[arg(long, default_value = "60s", value_parser = duration::parse, env = "BROKER_TIMEOUT")]
    pub broker_timeout: Duration,
    /// Timeout of one Backup Manager request.
    #[arg(long, default_value = "60s", value_parser = duration::parse, env = "BACKUP_MANAGER_TIMEOUT")]
    pub backup_manager_timeout: Duration,
    /// How long the broker catalog is cached per ProviderConfig.
    #[arg(long, default_value = "60s", value_parser = duration::parse, env = "CATALOG_TTL")]
    pub catalog_ttl: Duration,
    /// Platform limit for asynchronous operations (the plan's `maximum_polling_duration` may
    /// lower it); an operation running longer counts as failed.
    #[arg(long, default_value = "24h", value_parser = duration::parse, env = "MAX_POLLING_DURATION")]
    pub max_polling_duration: Duration,
    /// What to do with failed provisions.
    #[arg(long, value_enum, default_value = "off", env = "ORPHAN_MITIGATION")]
    pub orphan_mitigation: OrphanMitigation,
    /// Only reconcile managed resources matching this label selector (e.g. to shard
    /// providers; empty = all).
    #[arg(long, env = "WATCH_LABEL_SELECTOR")]
    pub watch_label_selector: Option<String>,
    /// Budget of one reconcile; every external call fits in it.
    #[arg(long, default_value = "2m", value_parser = duration::parse, env = "RECONCILE_TIMEOUT")]
    pub reconcile_timeout: Duration,
}

impl Cli {
    /// The reconciler options these flags select.
    pub fn options(&self) -> Options {
        Options {
            poll: self.poll,
            sync: self.sync,
            max_reconcile_rate: self.max_reconcile_rate.max(1),
            enable_management_policies: self.enable_management_policies,
            reconcile_timeout: self.reconcile_timeout,
            broker_timeout: self.broker_timeout,
            backup_manager_timeout: self.backup_manager_timeout,
            catalog_ttl: self.catalog_ttl,
            max_polling_duration: self.max_polling_duration,
            orphan_mitigation: self.orphan_mitigation == OrphanMitigation::Auto,
            label_selector: self.watch_label_selector.clone().filter(|s| !s.is_empty()),
        }
    }
}

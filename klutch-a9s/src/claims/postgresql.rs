//! `PostgresqlInstance`: a PostgreSQL instance from a9s Data Services (composition
//! `a9s-postgresql`) or from the a8s PostgreSQL operator (composition `a8s-postgresql`, the
//! default).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::rules::{self, composition, one_of, parameter_only_if};
use super::xrd::ClaimDefinition;
use super::{ClaimStatus, CompositionRef, string_enum};

/// The a9s composition.
pub const A9S_COMPOSITION: &str = "a9s-postgresql";
/// The a8s composition (the default).
pub const A8S_COMPOSITION: &str = "a8s-postgresql";

string_enum! {
    /// PostgreSQL versions (`spec.service`). a9s: 13, 15, 17; a8s: 13, 14.
    PostgresqlService {
        A9sPostgresql13 = "a9s-postgresql13",
        A9sPostgresql14 = "a9s-postgresql14",
        A9sPostgresql15 = "a9s-postgresql15",
        A9sPostgresql17 = "a9s-postgresql17",
    }
}

string_enum! {
    /// PostgreSQL plans (`spec.plan`). a9s offers single and replica plans in the sizes nano
    /// (single only), small and big, each optionally `-ssl` and/or `-bionic` (bionic only with
    /// PostgreSQL 13); a8s offers single and replica plans in nano, small, medium and big.
    PostgresqlPlan {
        SingleNano = "postgresql-single-nano",
        SingleSmall = "postgresql-single-small",
        SingleMedium = "postgresql-single-medium",
        SingleBig = "postgresql-single-big",
        ReplicaNano = "postgresql-replica-nano",
        ReplicaSmall = "postgresql-replica-small",
        ReplicaMedium = "postgresql-replica-medium",
        ReplicaBig = "postgresql-replica-big",
        SingleNanoSsl = "postgresql-single-nano-ssl",
        SingleSmallSsl = "postgresql-single-small-ssl",
        SingleBigSsl = "postgresql-single-big-ssl",
        ReplicaSmallSsl = "postgresql-replica-small-ssl",
        ReplicaBigSsl = "postgresql-replica-big-ssl",
        SingleNanoBionic = "postgresql-single-nano-bionic",
        SingleSmallBionic = "postgresql-single-small-bionic",
        SingleBigBionic = "postgresql-single-big-bionic",
        ReplicaSmallBionic = "postgresql-replica-small-bionic",
        ReplicaBigBionic = "postgresql-replica-big-bionic",
        SingleNanoSslBionic = "postgresql-single-nano-ssl-bionic",
        SingleSmallSslBionic = "postgresql-single-small-ssl-bionic",
        SingleBigSslBionic = "postgresql-single-big-ssl-bionic",
        ReplicaSmallSslBionic = "postgresql-replica-small-ssl-bionic",
        ReplicaBigSslBionic = "postgresql-replica-big-ssl-bionic",
    }
}

/// Services of the a9s composition.
pub const A9S_SERVICES: [PostgresqlService; 3] = [
    PostgresqlService::A9sPostgresql13,
    PostgresqlService::A9sPostgresql15,
    PostgresqlService::A9sPostgresql17,
];
/// Services of the a8s composition.
pub const A8S_SERVICES: [PostgresqlService; 2] = [
    PostgresqlService::A9sPostgresql13,
    PostgresqlService::A9sPostgresql14,
];

impl PostgresqlPlan {
    /// Whether the a9s composition offers this plan (everything but medium and replica-nano).
    pub fn is_a9s(&self) -> bool {
        let s = self.as_str();
        !s.contains("medium") && *self != PostgresqlPlan::ReplicaNano
    }

    /// Whether the a8s composition offers this plan (no `-ssl`, no `-bionic`).
    pub fn is_a8s(&self) -> bool {
        let s = self.as_str();
        !s.contains("ssl") && !s.contains("bionic")
    }
}

string_enum! {
    /// How an a8s instance is reachable (`spec.expose`).
    Expose {
        Internal = "Internal",
        LoadBalancer = "LoadBalancer",
    }
}

string_enum! {
    /// `enabled` / `disabled`.
    DataChecksums {
        Enabled = "enabled",
        Disabled = "disabled",
    }
}

string_enum! {
    /// A PostgreSQL boolean as the a8s operator accepts it.
    OnOff {
        On = "on",
        Off = "off",
    }
}

string_enum! {
    /// A default privilege of the binding credentials (a9s).
    RolePrivilege {
        CreateDb = "CREATEDB",
        CreateRole = "CREATEROLE",
        Replication = "REPLICATION",
    }
}

string_enum! {
    /// `synchronous_commit`.
    SynchronousCommit {
        On = "on",
        Off = "off",
        Local = "local",
        RemoteWrite = "remote_write",
        RemoteApply = "remote_apply",
    }
}

string_enum! {
    /// The minimum TLS version (a8s).
    SslMinProtocolVersion {
        TlsV1 = "TLSv1",
        TlsV1_1 = "TLSv1.1",
        TlsV1_2 = "TLSv1.2",
        TlsV1_3 = "TLSv1.3",
    }
}

string_enum! {
    /// Message levels sent to the client (`client_min_messages`).
    ClientMinMessages {
        Debug5 = "DEBUG5",
        Debug4 = "DEBUG4",
        Debug3 = "DEBUG3",
        Debug2 = "DEBUG2",
        Debug1 = "DEBUG1",
        Log = "LOG",
        Notice = "NOTICE",
        Warning = "WARNING",
        Error = "ERROR",
    }
}

string_enum! {
    /// Server log levels (`log_min_messages`, `log_min_error_statement`).
    LogLevel {
        Debug5 = "DEBUG5",
        Debug4 = "DEBUG4",
        Debug3 = "DEBUG3",
        Debug2 = "DEBUG2",
        Debug1 = "DEBUG1",
        Info = "INFO",
        Notice = "NOTICE",
        Warning = "WARNING",
        Error = "ERROR",
        Log = "LOG",
        Fatal = "FATAL",
        Panic = "PANIC",
    }
}

string_enum! {
    /// Which statements are logged (`log_statement`).
    LogStatement {
        None = "none",
        Ddl = "ddl",
        Mod = "mod",
        All = "all",
    }
}

string_enum! {
    /// Detail of log messages (`log_error_verbosity`).
    LogErrorVerbosity {
        Default = "DEFAULT",
        Verbose = "VERBOSE",
        Terse = "TERSE",
    }
}

/// The spec of a [`PostgresqlInstance`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "PostgresqlInstance",
    plural = "postgresqlinstances",
    namespaced,
    status = "ClaimStatus",
    doc = "A PostgreSQL instance from a9s Data Services or the a8s PostgreSQL operator."
)]
#[x_kube(
    validation = service_rule(),
    validation = plan_rule(),
    validation = kube::core::Rule::new("!self.plan.contains('bionic') || self.service == 'a9s-postgresql13'").message("Bionic plans are only supported by a9s PostgreSQL 13"),
    validation = a8s_only("maxLocksPerTransaction"),
    validation = a8s_only("sslCiphers"),
    validation = a8s_only("sslMinProtocolVersion"),
    validation = a9s_only("dataChecksums"),
    validation = a9s_only("effectiveCacheSize"),
    validation = a9s_only("workMem"),
    validation = a9s_only("maintenanceWorkMem"),
    validation = a9s_only("idleInTransactionSessionTimeout"),
    validation = a9s_only("rolePrivileges"),
    validation = a9s_only("walLevelLogical"),
)]
#[serde(rename_all = "camelCase")]
pub struct PostgresqlInstanceSpec {
    /// The PostgreSQL version (a9s: 13, 15, 17; a8s: 13, 14). Cannot be changed.
    #[x_kube(validation = rules::service_immutable())]
    pub service: PostgresqlService,
    /// The plan. Only upgrades to bigger sizes and from single to replica; the `-ssl` and
    /// `-bionic` flags cannot be switched.
    #[x_kube(
        validation = rules::no_downsizing(&["nano", "small", "medium", "big"]),
        validation = rules::ssl_unchanged(),
        validation = rules::bionic_unchanged(),
        validation = rules::no_clustered_to_single("replica", "Migration from clustered to single Data Service Instance is not supported."),
    )]
    pub plan: PostgresqlPlan,
    /// Whether the broker may provision asynchronously (the a9s composition defaults to `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_incomplete: Option<bool>,
    /// Where an a8s instance is reachable: `Internal` (inside its cluster) or `LoadBalancer`
    /// (the composition's default). Ignored by the a9s composition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<Expose>,
    /// PostgreSQL configuration parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<PostgresqlParameters>,
    /// `a8s-postgresql` (default) or `a9s-postgresql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl PostgresqlInstanceSpec {
    /// A spec with the given service and plan and nothing else set (default composition a8s).
    pub fn new(service: PostgresqlService, plan: PostgresqlPlan) -> Self {
        PostgresqlInstanceSpec {
            service,
            plan,
            accepts_incomplete: None,
            expose: None,
            parameters: None,
            composition_ref: None,
        }
    }

    /// The same spec on the a9s composition.
    pub fn a9s(mut self) -> Self {
        self.composition_ref = Some(CompositionRef::new(A9S_COMPOSITION));
        self
    }

    /// The same spec on the a8s composition.
    pub fn a8s(mut self) -> Self {
        self.composition_ref = Some(CompositionRef::new(A8S_COMPOSITION));
        self
    }
}

fn service_rule() -> kube::core::Rule {
    let comp = composition(A8S_COMPOSITION);
    let a9s: Vec<&str> = A9S_SERVICES.iter().map(|s| s.as_str()).collect();
    let a8s: Vec<&str> = A8S_SERVICES.iter().map(|s| s.as_str()).collect();
    kube::core::Rule::new(format!(
        "({comp} == '{A9S_COMPOSITION}' && {}) || ({comp} == '{A8S_COMPOSITION}' && {})",
        one_of("self.service", &a9s),
        one_of("self.service", &a8s),
    ))
    .message("Unsupported service used for postgresql")
}

fn plan_rule() -> kube::core::Rule {
    let comp = composition(A8S_COMPOSITION);
    // The plan names split into flags: cheaper to evaluate than lists of 20 names.
    let a9s = "!self.plan.contains('medium') && self.plan != 'postgresql-replica-nano'";
    let a8s = "!self.plan.contains('ssl') && !self.plan.contains('bionic')";
    kube::core::Rule::new(format!(
        "({comp} == '{A9S_COMPOSITION}' && {a9s}) || ({comp} == '{A8S_COMPOSITION}' && {a8s})"
    ))
    .message("Unsupported plan used for postgresql")
}

fn a8s_only(parameter: &str) -> kube::core::Rule {
    parameter_only_if(
        parameter,
        &format!("{} == '{A8S_COMPOSITION}'", composition(A8S_COMPOSITION)),
        format!("parameters.{parameter} is not supported for a9s-postgresql"),
    )
}

fn a9s_only(parameter: &str) -> kube::core::Rule {
    parameter_only_if(
        parameter,
        &format!("{} == '{A9S_COMPOSITION}'", composition(A8S_COMPOSITION)),
        format!("parameters.{parameter} is not supported for a8s-postgresql"),
    )
}

/// PostgreSQL configuration parameters. Fields marked "a9s only" or "a8s only" are rejected on
/// the other composition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresqlParameters {
    /// a9s only: checksums on data pages (`data_checksums`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_checksums: Option<DataChecksums>,
    /// The maximum number of concurrent connections (`max_connections`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i64>,
    /// a9s only: the planner's assumption about the disk cache (`effective_cache_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_cache_size: Option<String>,
    /// a9s only: memory for sorts and hash tables (`work_mem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_mem: Option<String>,
    /// a9s only: memory for maintenance operations (`maintenance_work_mem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_work_mem: Option<String>,
    /// Disk space for temporary files in kilobytes, `-1` for no limit (`temp_file_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self == -1 || self > 0").message("Must be either -1 (no limit) or a limit specified in kilobytes"))]
    pub temp_file_limit: Option<i64>,
    /// Timing of database I/O calls (`track_io_timing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_io_timing: Option<OnOff>,
    /// Seconds after which the server switches to a new WAL segment (`archive_timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_timeout: Option<i64>,
    /// Milliseconds after which a statement is aborted; 0 disables (`statement_timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_timeout: Option<i64>,
    /// a9s only: milliseconds an idle transaction may stay open
    /// (`idle_in_transaction_session_timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::at_least(0))]
    pub idle_in_transaction_session_timeout: Option<i64>,
    /// a9s only: default privileges of the credentials; the broker must allow them
    /// (`role_privileges`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_privileges: Option<Vec<RolePrivilege>>,
    /// a9s only: `wal_level = logical` when true (`wal_level_logical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_level_logical: Option<bool>,
    /// Milliseconds between WAL writer flushes (`wal_writer_delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::greater_than(0))]
    pub wal_writer_delay: Option<i64>,
    /// a8s only: locks per transaction (`max_locks_per_transaction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::at_least(10))]
    pub max_locks_per_transaction: Option<i64>,
    /// Replication slots (`max_replication_slots`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::at_least(0))]
    pub max_replication_slots: Option<i64>,
    /// WAL senders per node (`max_wal_senders`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::at_least(0))]
    pub max_wal_senders: Option<i64>,
    /// `synchronous_commit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronous_commit: Option<SynchronousCommit>,
    /// a8s only: allowed TLS ciphers (`ssl_ciphers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_ciphers: Option<String>,
    /// a8s only: minimum TLS version (`ssl_min_protocol_version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_min_protocol_version: Option<SslMinProtocolVersion>,
    /// Message levels sent to the client (`client_min_messages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_min_messages: Option<ClientMinMessages>,
    /// Message levels written to the server log (a9s: `pg_log_min_messages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_min_messages: Option<LogLevel>,
    /// Failing statements logged from this level on (a9s: `pg_log_min_error_statement`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_min_error_statement: Option<LogLevel>,
    /// Which statements are logged (`log_statement`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_statement: Option<LogStatement>,
    /// Detail of log messages (`log_error_verbosity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_error_verbosity: Option<LogErrorVerbosity>,
}

impl PostgresqlInstance {
    /// The a9s composition.
    pub const A9S_COMPOSITION: &'static str = A9S_COMPOSITION;
    /// The a8s composition (the default).
    pub const A8S_COMPOSITION: &'static str = A8S_COMPOSITION;
}

impl ClaimDefinition for PostgresqlInstance {
    const COMPOSITE_KIND: &'static str = "XPostgresqlInstance";
    const COMPOSITE_PLURAL: &'static str = "xpostgresqlinstances";
    const DEFAULT_COMPOSITION: &'static str = A8S_COMPOSITION;
    const FOREGROUND_DELETE: bool = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition_plan_sets_match_the_spec() {
        // spec 9.3: a9s single-{nano,small,big}, replica-{small,big}, each ±ssl ±bionic;
        // a8s {single,replica}-{nano,small,medium,big}
        let mut a9s = Vec::new();
        for base in [
            "single-nano",
            "single-small",
            "single-big",
            "replica-small",
            "replica-big",
        ] {
            for suffix in ["", "-ssl", "-bionic", "-ssl-bionic"] {
                a9s.push(format!("postgresql-{base}{suffix}"));
            }
        }
        let mut a8s = Vec::new();
        for topology in ["single", "replica"] {
            for size in ["nano", "small", "medium", "big"] {
                a8s.push(format!("postgresql-{topology}-{size}"));
            }
        }
        for plan in PostgresqlPlan::ALL {
            let name = plan.as_str().to_string();
            assert_eq!(plan.is_a9s(), a9s.contains(&name), "{name}");
            assert_eq!(plan.is_a8s(), a8s.contains(&name), "{name}");
        }
        assert_eq!(PostgresqlPlan::ALL.len(), 23);
    }

    #[test]
    fn string_enums_round_trip() {
        for plan in PostgresqlPlan::ALL {
            assert_eq!(plan.as_str().parse::<PostgresqlPlan>(), Ok(*plan));
            assert_eq!(serde_json::to_value(plan).unwrap(), plan.as_str());
        }
        let err = "postgresql-huge".parse::<PostgresqlPlan>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"postgresql-huge\" is not a valid PostgresqlPlan"
        );
    }
}

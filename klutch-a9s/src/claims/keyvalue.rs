//! `KeyvalueInstance`: an a9s KeyValue (Valkey) instance (composition `a9s-keyvalue`).

use kube::core::Rule;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::rules::{self, parameter_only_if};
use super::xrd::ClaimDefinition;
use super::{ClaimStatus, CompositionRef, string_enum};

string_enum! {
    /// The a9s KeyValue versions (`spec.service`).
    KeyvalueService {
        A9sKeyvalue8 = "a9s-keyvalue8",
    }
}

string_enum! {
    /// The a9s KeyValue plans (`spec.plan`), all with TLS. Single and replica cannot be
    /// switched.
    KeyvaluePlan {
        ReplicaSmallSsl = "keyvalue-replica-small-ssl",
        ReplicaMediumSsl = "keyvalue-replica-medium-ssl",
        ReplicaBigSsl = "keyvalue-replica-big-ssl",
        SingleNanoSsl = "keyvalue-single-nano-ssl",
        SingleSmallSsl = "keyvalue-single-small-ssl",
        SingleMediumSsl = "keyvalue-single-medium-ssl",
        SingleBigSsl = "keyvalue-single-big-ssl",
    }
}

string_enum! {
    /// `yes` / `no`.
    YesNo {
        Yes = "yes",
        No = "no",
    }
}

string_enum! {
    /// What happens when `maxmemory` is reached.
    MaxmemoryPolicy {
        VolatileLru = "volatile-lru",
        VolatileLfu = "volatile-lfu",
        VolatileRandom = "volatile-random",
        VolatileTtl = "volatile-ttl",
        AllkeysLru = "allkeys-lru",
        AllkeysLfu = "allkeys-lfu",
        AllkeysRandom = "allkeys-random",
        Noeviction = "noeviction",
    }
}

string_enum! {
    /// DNS/hostname support in Valkey and Sentinel.
    HostnameResolution {
        Disabled = "disabled",
        ResolveOnly = "resolve-only",
        Enabled = "enabled",
    }
}

string_enum! {
    /// Supported TLS versions.
    KeyvalueTlsProtocols {
        TlsV1_2 = "TLSv1.2",
        TlsV1_3 = "TLSv1.3",
        TlsV1_2And1_3 = "TLSv1.2 TLSv1.3",
        TlsV1_3And1_2 = "TLSv1.3 TLSv1.2",
    }
}

/// Parameters that only replica plans accept.
pub const REPLICA_ONLY_PARAMETERS: [&str; 6] = [
    "hostnameResolution",
    "downAfterMilliseconds",
    "failoverTimeout",
    "minReplicasMaxLag",
    "minReplicasToWrite",
    "replBacklogSize",
];

fn replica_only(parameter: &str) -> Rule {
    parameter_only_if(
        parameter,
        "self.plan.contains('-replica-')",
        format!("parameters.{parameter} is only supported for clustered plans"),
    )
}

/// The spec of a [`KeyvalueInstance`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "KeyvalueInstance",
    plural = "keyvalueinstances",
    namespaced,
    status = "ClaimStatus",
    doc = "An a9s KeyValue (Valkey) instance.",
    printcolumn = r#"{"name":"ManagedResource","type":"string","jsonPath":".status.managed.state"}"#
)]
#[x_kube(
    validation = replica_only("hostnameResolution"),
    validation = replica_only("downAfterMilliseconds"),
    validation = replica_only("failoverTimeout"),
    validation = replica_only("minReplicasMaxLag"),
    validation = replica_only("minReplicasToWrite"),
    validation = replica_only("replBacklogSize"),
)]
#[serde(rename_all = "camelCase")]
pub struct KeyvalueInstanceSpec {
    /// The KeyValue version. Cannot be changed.
    #[x_kube(validation = rules::service_immutable())]
    pub service: KeyvalueService,
    /// The plan. Only upgrades to bigger sizes; single and replica cannot be switched.
    #[x_kube(
        validation = rules::no_downsizing(&["nano", "small", "medium", "big"]),
        validation = rules::no_clustered_to_single("replica", "Migration from clustered to single Data Service Instance is not supported."),
        validation = rules::no_single_to_clustered("replica"),
        validation = rules::ssl_unchanged(),
    )]
    pub plan: KeyvaluePlan,
    /// Whether the broker may provision asynchronously (the composition defaults to `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_incomplete: Option<bool>,
    /// a9s KeyValue custom parameters (the broker's kebab-case names in camelCase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<KeyvalueParameters>,
    /// The composition; only `a9s-keyvalue` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl KeyvalueInstanceSpec {
    /// A spec with the given service and plan and nothing else set.
    pub fn new(service: KeyvalueService, plan: KeyvaluePlan) -> Self {
        KeyvalueInstanceSpec {
            service,
            plan,
            accepts_incomplete: None,
            parameters: None,
            composition_ref: None,
        }
    }
}

/// a9s KeyValue custom parameters. Replica-only parameters ([`REPLICA_ONLY_PARAMETERS`]) are
/// rejected on single plans.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyvalueParameters {
    /// Snapshot rules, `['save <seconds> <writes>',...]`; `[]` turns KeyValue into a cache
    /// (`snapshot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(r#"self.matches("^\\[('save [1-9][0-9]* [1-9][0-9]*'(,'save [1-9][0-9]* [1-9][0-9]*')*)?\\]$")"#).message("Must either be `[]`, `['save <number> <number>']` or `['save <number> <number>','save <number> <number>'...]`"))]
    pub snapshot: Option<String>,
    /// Replica plans only: replication backlog size, a number optionally followed by k(b),
    /// m(b) or g(b) (`repl-backlog-size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(r#"self.matches("^[1-9][0-9]*((k|m|g)b?)?$")"#).message("Must be a number, can be followed by k(b), m(b) or g(b)"))]
    pub repl_backlog_size: Option<String>,
    /// Replica plans only: replicas needed to accept writes, ≥ 0 (`min-replicas-to-write`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::not_negative())]
    pub min_replicas_to_write: Option<i64>,
    /// Replica plans only: maximum replica lag in seconds, > 0 (`min-replicas-max-lag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0").message("Must be higher than 0."))]
    pub min_replicas_max_lag: Option<i64>,
    /// `lazyfree-lazy-eviction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lazyfree_lazy_eviction: Option<YesNo>,
    /// `lazyfree-lazy-expire`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lazyfree_lazy_expire: Option<YesNo>,
    /// Memory limit per node: `dynamic`, `0` (unlimited) or a number optionally followed by
    /// k(b), m(b) or g(b) (`maxmemory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(r#"self.matches("^dynamic$|^0$|^[1-9][0-9]*((k|m|g)b?)?$")"#).message("Must be `dynamic`, `0` or number greater than 0. If it is a number greater than 0 it can be followed by k(b), m(b) or g(b)"))]
    pub maxmemory: Option<String>,
    /// Eviction policy when `maxmemory` is reached (`maxmemory-policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxmemory_policy: Option<MaxmemoryPolicy>,
    /// `maxmemory-samples`, ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::not_negative())]
    pub maxmemory_samples: Option<i64>,
    /// `maxclients`, ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::not_negative())]
    pub maxclients: Option<i64>,
    /// Replica plans only: Sentinel's `down-after-milliseconds`, ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::not_negative())]
    pub down_after_milliseconds: Option<i64>,
    /// Replica plans only: Sentinel's `failover-timeout`, ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::not_negative())]
    pub failover_timeout: Option<i64>,
    /// Replica plans only: `hostname-resolution`. Go through `resolve-only` when switching
    /// between `enabled` and `disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname_resolution: Option<HostnameResolution>,
    /// Supported TLS versions (`tls-protocols`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_protocols: Option<KeyvalueTlsProtocols>,
    /// Allowed TLS ciphers, OpenSSL syntax (`tls-ciphers`); not validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ciphers: Option<String>,
    /// Allowed TLS 1.3 cipher suites (`tls-ciphersuites`); not validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ciphersuites: Option<String>,
    /// `lua-time-limit` in milliseconds, ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::not_negative())]
    pub lua_time_limit: Option<i64>,
    /// Keyspace notifications, characters of `KEg$lshzxeA` with at least one `K` or `E`
    /// (`notify-keyspace-events`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(r#"self.matches("^$|^[KEg\\$lshzxeA]*[KE][KEg\\$lshzxeA]*$")"#).message("Must only contain legal characters and at least one K or E"))]
    pub notify_keyspace_events: Option<String>,
}

impl ClaimDefinition for KeyvalueInstance {
    const COMPOSITE_KIND: &'static str = "XKeyvalueInstance";
    const COMPOSITE_PLURAL: &'static str = "xkeyvalueinstances";
    const DEFAULT_COMPOSITION: &'static str = "a9s-keyvalue";
    const FOREGROUND_DELETE: bool = true;
}

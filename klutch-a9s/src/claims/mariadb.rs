//! `MariadbInstance`: an a9s MariaDB instance (composition `a9s-mariadb`).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules;
use super::xrd::ClaimDefinition;
use super::{ClaimStatus, CompositionRef, string_enum};

string_enum! {
    /// The a9s MariaDB versions (`spec.service`); 10.11 only with `-ssl` plans.
    MariadbService {
        A9sMariadb106 = "a9s-mariadb106",
        A9sMariadb1011 = "a9s-mariadb1011",
    }
}

string_enum! {
    /// The a9s MariaDB plans (`spec.plan`): single or Galera cluster, size, optionally TLS.
    MariadbPlan {
        SingleNano = "mariadb-single-nano",
        SingleSmall = "mariadb-single-small",
        SingleBig = "mariadb-single-big",
        SingleNanoSsl = "mariadb-single-nano-ssl",
        SingleSmallSsl = "mariadb-single-small-ssl",
        SingleBigSsl = "mariadb-single-big-ssl",
        ClusterSmall = "mariadb-cluster-small",
        ClusterBig = "mariadb-cluster-big",
        ClusterSmallSsl = "mariadb-cluster-small-ssl",
        ClusterBigSsl = "mariadb-cluster-big-ssl",
    }
}

/// The spec of a [`MariadbInstance`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "MariadbInstance",
    plural = "mariadbinstances",
    namespaced,
    status = "ClaimStatus",
    doc = "An a9s MariaDB instance.",
    printcolumn = r#"{"name":"ManagedResource","type":"string","jsonPath":".status.managed.state"}"#
)]
#[x_kube(validation = kube::core::Rule::new("self.service != 'a9s-mariadb1011' || self.plan.contains('ssl')").message("MariaDB v10.11 only supports ssl plans"))]
#[serde(rename_all = "camelCase")]
pub struct MariadbInstanceSpec {
    /// The MariaDB version. Cannot be changed.
    #[x_kube(validation = rules::service_immutable())]
    pub service: MariadbService,
    /// The plan. Only upgrades to bigger sizes and from single to cluster; TLS cannot be
    /// switched.
    #[x_kube(
        validation = rules::no_downsizing(&["nano", "small", "big"]),
        validation = rules::no_clustered_to_single("cluster", "Migration from replicated to single Data Service Instance is not supported."),
        validation = rules::ssl_unchanged(),
    )]
    pub plan: MariadbPlan,
    /// Whether the broker may provision asynchronously (the composition defaults to `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_incomplete: Option<bool>,
    /// a9s MariaDB custom parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<MariadbParameters>,
    /// The composition; only `a9s-mariadb` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl MariadbInstanceSpec {
    /// A spec with the given service and plan and nothing else set.
    pub fn new(service: MariadbService, plan: MariadbPlan) -> Self {
        MariadbInstanceSpec {
            service,
            plan,
            accepts_incomplete: None,
            parameters: None,
            composition_ref: None,
        }
    }
}

/// a9s MariaDB custom parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MariadbParameters {
    /// Days the binary log is kept before purging, ≥ 1 (`binlog_expire_days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub binlog_expire_days: Option<i64>,
    /// Databases to create besides the default one (`databases`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
    /// Grant Performance Schema permissions to binding credentials
    /// (`grant_performance_schema_permissions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_performance_schema_permissions: Option<bool>,
}

impl ClaimDefinition for MariadbInstance {
    const COMPOSITE_KIND: &'static str = "XMariadbInstance";
    const COMPOSITE_PLURAL: &'static str = "xmariadbinstances";
    const DEFAULT_COMPOSITION: &'static str = "a9s-mariadb";
    const FOREGROUND_DELETE: bool = true;
}

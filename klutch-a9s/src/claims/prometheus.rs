//! `PrometheusInstance`: an a9s Prometheus instance (composition `a9s-prometheus`).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules;
use super::xrd::ClaimDefinition;
use super::{ClaimStatus, CompositionRef, string_enum};

string_enum! {
    /// The a9s Prometheus versions (`spec.service`).
    PrometheusService {
        A9sPrometheus = "a9s-prometheus",
    }
}

string_enum! {
    /// The a9s Prometheus plans (`spec.plan`). Plans cannot be changed.
    PrometheusPlan {
        PrometheusSingleSmall = "prometheus-single-small",
        PrometheusSingleBig = "prometheus-single-big",
        Promgraf2SingleSmall = "promgraf2-single-small",
        Promgraf2SingleBig = "promgraf2-single-big",
        Prometheus2Grafana10SingleSmall = "prometheus2-grafana10-single-small",
        Prometheus2Grafana10SingleBig = "prometheus2-grafana10-single-big",
    }
}

/// The spec of a [`PrometheusInstance`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "PrometheusInstance",
    plural = "prometheusinstances",
    namespaced,
    status = "ClaimStatus",
    doc = "An a9s Prometheus instance.",
    printcolumn = r#"{"name":"ManagedResource","type":"string","jsonPath":".status.managed.state"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusInstanceSpec {
    /// The Prometheus version. Cannot be changed.
    #[x_kube(validation = rules::service_immutable())]
    pub service: PrometheusService,
    /// The plan. Cannot be changed.
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("Upgrade functionality for Prometheus plans is not supported"))]
    pub plan: PrometheusPlan,
    /// Whether the broker may provision asynchronously (the composition defaults to `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_incomplete: Option<bool>,
    /// a9s Prometheus custom parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<PrometheusParameters>,
    /// The composition; only `a9s-prometheus` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl PrometheusInstanceSpec {
    /// A spec with the given service and plan and nothing else set.
    pub fn new(service: PrometheusService, plan: PrometheusPlan) -> Self {
        PrometheusInstanceSpec {
            service,
            plan,
            accepts_incomplete: None,
            parameters: None,
            composition_ref: None,
        }
    }
}

/// a9s Prometheus custom parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusParameters {
    /// Graphite exporter's `mapping-strict-match` (`mapping_strict_match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_strict_match: Option<bool>,
    /// Additional scrape targets in Prometheus' `scrape_configs` format (`scrape_configs`);
    /// disabled unless the platform operator enables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "rules::free_form_object_list")]
    pub scrape_configs: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
}

impl ClaimDefinition for PrometheusInstance {
    const COMPOSITE_KIND: &'static str = "XPrometheusInstance";
    const COMPOSITE_PLURAL: &'static str = "xprometheusinstances";
    const DEFAULT_COMPOSITION: &'static str = "a9s-prometheus";
    const FOREGROUND_DELETE: bool = true;
}

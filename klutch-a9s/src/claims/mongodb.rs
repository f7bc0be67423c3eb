//! `MongodbInstance`: an a9s MongoDB instance (composition `a9s-mongodb`).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules;
use super::xrd::ClaimDefinition;
use super::{ClaimStatus, CompositionRef, string_enum};

string_enum! {
    /// The a9s MongoDB versions (`spec.service`).
    MongodbService {
        A9sMongodb50 = "a9s-mongodb50",
        A9sMongodb70 = "a9s-mongodb70",
    }
}

string_enum! {
    /// The a9s MongoDB plans (`spec.plan`): single or replica set, size, optionally with TLS.
    MongodbPlan {
        SingleNano = "mongodbsspl-single-nano",
        SingleSmall = "mongodbsspl-single-small",
        SingleBig = "mongodbsspl-single-big",
        SingleNanoSsl = "mongodbsspl-single-nano-ssl",
        SingleSmallSsl = "mongodbsspl-single-small-ssl",
        SingleBigSsl = "mongodbsspl-single-big-ssl",
        ReplicaSmall = "mongodbsspl-replica-small",
        ReplicaBig = "mongodbsspl-replica-big",
        ReplicaSmallSsl = "mongodbsspl-replica-small-ssl",
        ReplicaBigSsl = "mongodbsspl-replica-big-ssl",
    }
}

/// The spec of a [`MongodbInstance`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "MongodbInstance",
    plural = "mongodbinstances",
    namespaced,
    status = "ClaimStatus",
    doc = "An a9s MongoDB instance.",
    printcolumn = r#"{"name":"ManagedResource","type":"string","jsonPath":".status.managed.state"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MongodbInstanceSpec {
    /// The MongoDB version. Cannot be changed.
    #[x_kube(validation = rules::service_immutable())]
    pub service: MongodbService,
    /// The plan. Only upgrades to bigger sizes and from single to replica set; TLS cannot be
    /// switched.
    #[x_kube(
        validation = rules::no_downsizing(&["nano", "small", "big"]),
        validation = rules::no_clustered_to_single("replica", "Migration from replicated to single Data Service Instance is not supported."),
        validation = rules::ssl_unchanged(),
    )]
    pub plan: MongodbPlan,
    /// Whether the broker may provision asynchronously (the composition defaults to `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_incomplete: Option<bool>,
    /// a9s MongoDB custom parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<MongodbParameters>,
    /// The composition; only `a9s-mongodb` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl MongodbInstanceSpec {
    /// A spec with the given service and plan and nothing else set.
    pub fn new(service: MongodbService, plan: MongodbPlan) -> Self {
        MongodbInstanceSpec {
            service,
            plan,
            accepts_incomplete: None,
            parameters: None,
            composition_ref: None,
        }
    }
}

/// a9s MongoDB custom parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MongodbParameters {
    /// MongoDB's `setClusterParameter` (sent as `set_cluster_parameter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_cluster_parameter: Option<SetClusterParameter>,
}

/// MongoDB cluster parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetClusterParameter {
    /// Change stream options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_stream_options: Option<ChangeStreamOptions>,
}

/// Change stream options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeStreamOptions {
    /// Retention of pre- and post-images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_and_post_images: Option<PreAndPostImages>,
}

/// Retention of pre- and post-images.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreAndPostImages {
    /// How long MongoDB keeps pre- and post-images: `off` (until the change stream events
    /// leave the oplog) or seconds (≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "rules::int_or_string")]
    #[x_kube(validation = kube::core::Rule::new("type(self) == string ? self == 'off' : self >= 0").message("must be 'off' or an integer >= 0"))]
    pub expire_after_seconds: Option<ExpireAfterSeconds>,
}

/// `off` or a number of seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExpireAfterSeconds {
    /// Seconds (≥ 0).
    Seconds(i64),
    /// `off`, or any other string (the apiserver accepts only `off`).
    Keyword(String),
}

impl ExpireAfterSeconds {
    /// `off`: MongoDB's default retention.
    pub fn off() -> Self {
        ExpireAfterSeconds::Keyword("off".into())
    }
}

impl ClaimDefinition for MongodbInstance {
    const COMPOSITE_KIND: &'static str = "XMongodbInstance";
    const COMPOSITE_PLURAL: &'static str = "xmongodbinstances";
    const DEFAULT_COMPOSITION: &'static str = "a9s-mongodb";
    const FOREGROUND_DELETE: bool = true;
}

//! `MessagingInstance`: an a9s Messaging (RabbitMQ) instance (composition `a9s-messaging`).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules;
use super::xrd::ClaimDefinition;
use super::{ClaimStatus, CompositionRef, string_enum};

string_enum! {
    /// The a9s Messaging versions (`spec.service`).
    MessagingService {
        A9sMessaging310 = "a9s-messaging310",
        A9sMessaging312 = "a9s-messaging312",
        A9sMessaging313 = "a9s-messaging313",
        A9sMessaging4 = "a9s-messaging4",
    }
}

string_enum! {
    /// The a9s Messaging plans (`spec.plan`): single or cluster, size, optionally TLS.
    MessagingPlan {
        SingleNano = "messaging-single-nano",
        SingleSmall = "messaging-single-small",
        SingleBig = "messaging-single-big",
        SingleNanoSsl = "messaging-single-nano-ssl",
        SingleSmallSsl = "messaging-single-small-ssl",
        SingleBigSsl = "messaging-single-big-ssl",
        ClusterSmall = "messaging-cluster-small",
        ClusterBig = "messaging-cluster-big",
        ClusterSmallSsl = "messaging-cluster-small-ssl",
        ClusterBigSsl = "messaging-cluster-big-ssl",
    }
}

string_enum! {
    /// A TLS version of RabbitMQ's `ssl_options.versions`.
    MessagingTlsProtocol {
        TlsV1_2 = "tlsv1.2",
        TlsV1_3 = "tlsv1.3",
    }
}

/// The spec of a [`MessagingInstance`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "MessagingInstance",
    plural = "messaginginstances",
    namespaced,
    status = "ClaimStatus",
    doc = "An a9s Messaging (RabbitMQ) instance.",
    printcolumn = r#"{"name":"ManagedResource","type":"string","jsonPath":".status.managed.state"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MessagingInstanceSpec {
    /// The RabbitMQ version. Cannot be changed.
    #[x_kube(validation = rules::service_immutable())]
    pub service: MessagingService,
    /// The plan. Only upgrades to bigger sizes and from single to cluster; TLS cannot be
    /// switched.
    #[x_kube(
        validation = rules::no_downsizing(&["nano", "small", "big"]),
        validation = rules::no_clustered_to_single("cluster", "Migration from clustered to single Data Service Instance is not supported."),
        validation = rules::ssl_unchanged(),
    )]
    pub plan: MessagingPlan,
    /// Whether the broker may provision asynchronously (the composition defaults to `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_incomplete: Option<bool>,
    /// a9s Messaging custom parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<MessagingParameters>,
    /// The composition; only `a9s-messaging` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl MessagingInstanceSpec {
    /// A spec with the given service and plan and nothing else set.
    pub fn new(service: MessagingService, plan: MessagingPlan) -> Self {
        MessagingInstanceSpec {
            service,
            plan,
            accepts_incomplete: None,
            parameters: None,
            composition_ref: None,
        }
    }
}

/// a9s Messaging custom parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagingParameters {
    /// RabbitMQ's `consumer_timeout` in milliseconds, ≥ 1800000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1800000))]
    pub consumer_timeout: Option<i64>,
    /// Allowed TLS versions (`tls-protocols`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_protocols: Option<Vec<MessagingTlsProtocol>>,
    /// Allowed TLS ciphers (`tls-ciphers`); not validated, a wrong value can break the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ciphers: Option<Vec<String>>,
}

impl ClaimDefinition for MessagingInstance {
    const COMPOSITE_KIND: &'static str = "XMessagingInstance";
    const COMPOSITE_PLURAL: &'static str = "xmessaginginstances";
    const DEFAULT_COMPOSITION: &'static str = "a9s-messaging";
    const FOREGROUND_DELETE: bool = true;
}

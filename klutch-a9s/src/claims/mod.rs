//! Typed claims of Klutch's Crossplane configuration package (`anynines.com/v1`).
//!
//! Application developers order data services by creating *claims* in their namespace: a
//! [`PostgresqlInstance`](postgresql::PostgresqlInstance), a
//! [`ServiceBinding`](binding::ServiceBinding) for credentials, a [`Backup`](backup::Backup) and
//! a [`Restore`](backup::Restore). Crossplane turns each claim into managed resources of
//! `provider-anynines` (a9s Data Services) or `provider-kubernetes` (a8s PostgreSQL) through the
//! package's compositions.
//!
//! The types here are the single source of the package: the CompositeResourceDefinitions
//! (XRDs) under `crossplane-api/` in the repository are generated from them ([`xrd`]), CEL rules
//! included, and so are the compositions ([`composition`]) and the whole package
//! ([`package::files`]). The Kubernetes apiserver, not this crate, enforces the rules (allowed
//! services and plans, no plan downsizing, immutable service, parameter ranges); see
//! `docs/crossplane-api.md`.
//!
//! ```
//! use klutch_a9s::claims::postgresql::{
//!     PostgresqlInstance, PostgresqlInstanceSpec, PostgresqlParameters, PostgresqlPlan,
//!     PostgresqlService,
//! };
//! use klutch_a9s::claims::binding::{ServiceBinding, ServiceBindingSpec, creds_secret_name};
//! use klutch_a9s::claims::ServiceInstanceType;
//!
//! let mut pg = PostgresqlInstance::new(
//!     "orders-db",
//!     PostgresqlInstanceSpec {
//!         parameters: Some(PostgresqlParameters {
//!             max_connections: Some(200),
//!             ..Default::default()
//!         }),
//!         ..PostgresqlInstanceSpec::new(PostgresqlService::A9sPostgresql15, PostgresqlPlan::SingleSmallSsl)
//!             .a9s()
//!     },
//! );
//! pg.metadata.namespace = Some("shop".into());
//! let json = serde_json::to_value(&pg).unwrap();
//! assert_eq!(json["spec"]["plan"], "postgresql-single-small-ssl");
//! assert_eq!(json["spec"]["compositionRef"]["name"], "a9s-postgresql");
//!
//! // Credentials: the a9s binding composition writes them to `orders-app-creds`.
//! let binding = ServiceBinding::new(
//!     "orders-app",
//!     ServiceBindingSpec::new("orders-db", ServiceInstanceType::Postgresql).a9s(),
//! );
//! assert_eq!(creds_secret_name("orders-app"), "orders-app-creds");
//! // With a kube::Client:
//! //   Api::<PostgresqlInstance>::namespaced(client.clone(), "shop").create(&pp, &pg).await?;
//! //   Api::<ServiceBinding>::namespaced(client, "shop").create(&pp, &binding).await?;
//! # let _ = binding;
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod backup;
pub mod binding;
pub mod composition;
pub mod keyvalue;
pub mod logme2;
pub mod mariadb;
pub mod messaging;
pub mod mongodb;
pub mod package;
pub mod postgresql;
pub mod prometheus;
pub(crate) mod rules;
pub mod search;
pub mod xrd;

/// The API group of every claim.
pub const GROUP: &str = "anynines.com";
/// The API version of every claim.
pub const VERSION: &str = "v1";

/// Defines a string enum with serde names, `ALL`, `as_str`, `Display` and `FromStr`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $(
                #[doc = concat!("`", $value, "`")]
                #[serde(rename = $value)]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in the order of the schema's `enum`.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as it appears in YAML.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // By hand rather than derived: without a type-level description, the field's own
        // documentation describes the field in the schema (`kubectl explain`).
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "enum": [$($value),+],
                })
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::claims::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| crate::claims::UnknownValue {
                        what: stringify!($name),
                        value: s.to_string(),
                    })
            }
        }
    };
}
pub(crate) use string_enum;

/// A string that is not one of an enum's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}")]
pub struct UnknownValue {
    /// The Rust type that was parsed.
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
}

/// Errors of the package generation ([`xrd`], [`composition`], [`package`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A generated object could not be written as YAML.
    #[error("serialising {what} as YAML")]
    Yaml {
        /// The object, e.g. `XRD xpostgresqlinstances.anynines.com`.
        what: String,
        /// The serialiser's error.
        #[source]
        source: serde_saphyr::ser_error::Error,
    },
    /// A generated CRD schema has an unexpected shape (a bug in the claim types).
    #[error("the schema of {kind} has no {path}")]
    Schema {
        /// The claim kind.
        kind: String,
        /// The missing part, e.g. `spec.versions[0].schema`.
        path: &'static str,
    },
}

/// The `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Selects a composition, i.e. the backend of a claim (`spec.compositionRef`).
///
/// Without one, Crossplane uses the claim kind's default composition (`a8s-*` for PostgreSQL,
/// ServiceBinding, Backup and Restore; the only `a9s-*` composition for the other kinds), and
/// the CEL rules evaluate as if that default had been given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CompositionRef {
    /// The composition's name, e.g. `a9s-postgresql`.
    pub name: String,
}

impl CompositionRef {
    /// A reference to the composition called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        CompositionRef { name: name.into() }
    }
}

/// Where Crossplane writes the claim's connection details (`spec.writeConnectionSecretToRef`).
///
/// The package's compositions do not publish connection details through the claim: a9s
/// bindings write the Secret `<claim>-creds` themselves (see [`binding`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    /// The Secret's name in the claim's namespace.
    pub name: String,
}

/// A Crossplane condition on a claim (`status.conditions[]`), e.g. `Ready` or `Synced`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimCondition {
    /// `Ready`, `Synced`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A machine-readable reason, e.g. `Available`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// The status of every claim: Crossplane's conditions plus `managed`, which the compositions
/// fill from the composed resource (e.g. `state`, `conditions`, `createdAt` of an a9s
/// ServiceInstance; `clusterStatus` of an a8s PostgreSQL).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimStatus {
    /// Status copied from the composed resource; free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::claims::rules::free_form_object")]
    pub managed: Option<serde_json::Map<String, serde_json::Value>>,
    /// Crossplane's conditions (`Ready`, `Synced`). Written by Crossplane; not part of the XRD.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ClaimCondition>,
}

impl ClaimStatus {
    /// `status.managed.state`, the data service's state as the provider reports it.
    pub fn managed_state(&self) -> Option<&str> {
        self.managed.as_ref()?.get("state")?.as_str()
    }

    /// Whether Crossplane reports the claim `Ready=True`.
    pub fn is_ready(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    }
}

/// The kind of data service a [`binding::ServiceBinding`], [`backup::Backup`] or
/// [`backup::Restore`] refers to (`spec.serviceInstanceType`); it picks the ProviderConfigs
/// `<type>-service-broker` and `<type>-backup-manager`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ServiceInstanceType {
    /// a9s KeyValue (`KeyvalueInstance`).
    Keyvalue,
    /// a9s or a8s PostgreSQL (`PostgresqlInstance`).
    Postgresql,
    /// a9s MongoDB (`MongodbInstance`).
    Mongodb,
    /// a9s Search (`SearchInstance`).
    Search,
    /// a9s LogMe2 (`Logme2Instance`).
    Logme2,
    /// a9s Prometheus (`PrometheusInstance`).
    Prometheus,
    /// a9s Messaging (`MessagingInstance`).
    Messaging,
    /// a9s MariaDB (`MariadbInstance`).
    Mariadb,
}

impl ServiceInstanceType {
    /// Every type, in the order of the schema's `enum`.
    pub const ALL: &'static [ServiceInstanceType] = &[
        Self::Keyvalue,
        Self::Postgresql,
        Self::Mongodb,
        Self::Search,
        Self::Logme2,
        Self::Prometheus,
        Self::Messaging,
        Self::Mariadb,
    ];

    /// The value as it appears in YAML, e.g. `postgresql`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Keyvalue => "keyvalue",
            Self::Postgresql => "postgresql",
            Self::Mongodb => "mongodb",
            Self::Search => "search",
            Self::Logme2 => "logme2",
            Self::Prometheus => "prometheus",
            Self::Messaging => "messaging",
            Self::Mariadb => "mariadb",
        }
    }
}

impl std::fmt::Display for ServiceInstanceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

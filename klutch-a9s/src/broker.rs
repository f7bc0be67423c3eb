//! The a9s Service Broker's extensions on top of OSB (spec 12): the instance record and
//! instance list, the health check, fetch instance without the `instances_retrievable` gate,
//! operation polling with `service_id`/`plan_id`, and the a9s id and naming conventions.
//!
//! Every call sends basic auth and `X-Broker-API-Version: 2.14` (HEAD included) and no
//! originating identity.
//!
//! ```no_run
//! # async fn run() -> Result<(), klutch_a9s::broker::BrokerExtError> {
//! use klutch_a9s::broker::{A9sBroker, InstanceState};
//! use klutch_a9s::transport::HttpConfig;
//!
//! let broker = A9sBroker::new(
//!     HttpConfig::new("https://pg-broker.example.com").basic_auth("admin", "secret"),
//! )?
//! .with_health_endpoint("/osb_ext/v1/healthy");
//! assert!(broker.health().await?.is_healthy());
//! let id = broker.unique_instance_id().await?;
//! // ... provision `id` with `broker.osb()` ...
//! let record = broker.instance(&id).await?;
//! if record.state == InstanceState::Provisioned {
//!     println!("deployment {:?}", record.deployment_name);
//! }
//! # Ok(()) }
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use http::Method;
use klutch_osb::{
    ApiVersion, CallOptions, Catalog, LastOperationQuery, LastOperationReply, OperationKey, Plan,
    RequestIdentity, Service,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::backup::Health;
use crate::transport::{
    ApiError, ApiErrorKind, CallError, HttpConfig, Transport, encode, non_empty,
};

/// A `Result` with this module's [`BrokerExtError`].
pub type Result<T, E = BrokerExtError> = std::result::Result<T, E>;

/// The version header value the a9s broker is driven with.
pub const A9S_API_VERSION: &str = "2.14";

/// The default health endpoint (`HEAD /instances`).
pub const DEFAULT_HEALTH_ENDPOINT: &str = "/instances";

/// The health endpoint of current a9s brokers.
pub const CURRENT_HEALTH_ENDPOINT: &str = "/osb_ext/v1/healthy";

/// How often [`A9sBroker::unique_instance_id`] tries before giving up.
pub const MAX_ID_ATTEMPTS: u32 = 10;

/// The most pages [`A9sBroker::list_instances`] follows (a guard against `next_url` loops).
pub const MAX_PAGES: usize = 10_000;

/// A failed broker extension call, named after the operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerExtError {
    /// The HTTP transport could not be configured.
    #[error("configuring the a9s broker client")]
    Configure {
        /// The cause.
        #[source]
        source: CallError,
    },
    /// The OSB client could not be configured.
    #[error("configuring the OSB client for the a9s broker")]
    ConfigureOsb {
        /// The cause.
        #[source]
        source: klutch_osb::Error,
    },
    /// `GET /instances/{id}` failed (404 `InstanceNotFound` = unknown id).
    #[error("reading the a9s instance record {instance_id}")]
    GetInstance {
        /// The instance.
        instance_id: String,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// `GET /instances` (or a `next_url` page) failed.
    #[error("listing a9s instances")]
    ListInstances {
        /// The cause.
        #[source]
        source: CallError,
    },
    /// The health check could not reach the broker.
    #[error("checking the health of the a9s broker")]
    Health {
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Fetching the instance with its parameters failed.
    #[error("fetching instance {instance_id} from the a9s broker")]
    FetchInstance {
        /// The instance.
        instance_id: String,
        /// The cause.
        #[source]
        source: klutch_osb::Error,
    },
    /// Polling the operation state failed.
    #[error("polling the last operation of instance {instance_id}")]
    LastOperation {
        /// The instance.
        instance_id: String,
        /// The cause.
        #[source]
        source: klutch_osb::Error,
    },
    /// Checking a generated instance id for uniqueness failed.
    #[error("checking whether instance id {instance_id} is unused")]
    CheckInstanceId {
        /// The id being checked.
        instance_id: String,
        /// The cause.
        #[source]
        source: CallError,
    },
    /// Every generated instance id collided with an existing one.
    #[error("generating a unique instance id: {attempts} attempts collided")]
    GenerateInstanceId {
        /// The attempts made.
        attempts: u32,
    },
    /// The wanted service name matched no catalog service, or several.
    #[error(
        "matching service {wanted:?} in the catalog: {}",
        describe_candidates(candidates)
    )]
    MatchService {
        /// The wanted name.
        wanted: String,
        /// The matching catalog names (empty or more than one).
        candidates: Vec<String>,
    },
    /// The wanted plan name does not exist in the service.
    #[error("matching plan {wanted:?} of service {service:?}: no such plan")]
    MatchPlan {
        /// The service.
        service: String,
        /// The wanted plan name.
        wanted: String,
    },
}

fn describe_candidates(c: &[String]) -> String {
    if c.is_empty() {
        "Service Offering does not exist in the catalog".to_owned()
    } else {
        format!("ambiguous, several services match: {}", c.join(", "))
    }
}

impl BrokerExtError {
    /// The server's error answer on an extension endpoint, if any.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            BrokerExtError::Configure { source }
            | BrokerExtError::GetInstance { source, .. }
            | BrokerExtError::ListInstances { source }
            | BrokerExtError::Health { source }
            | BrokerExtError::CheckInstanceId { source, .. } => source.api(),
            _ => None,
        }
    }

    /// The OSB error of an OSB-shaped call, if any.
    pub fn osb(&self) -> Option<&klutch_osb::Error> {
        match self {
            BrokerExtError::ConfigureOsb { source }
            | BrokerExtError::FetchInstance { source, .. }
            | BrokerExtError::LastOperation { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True when the instance does not exist (404 on either kind of endpoint).
    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(|a| a.kind == ApiErrorKind::NotFound)
            || self.osb().and_then(klutch_osb::Error::status) == Some(404)
    }
}

/// The lifecycle state of an a9s instance (spec 12.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum InstanceState {
    /// `created`.
    Created,
    /// `deploying`.
    Deploying,
    /// `provisioned`.
    Provisioned,
    /// `available`.
    Available,
    /// `deleting`.
    Deleting,
    /// `deleted`.
    Deleted,
    /// `failed`.
    Failed,
    /// `unknown` (also: no state sent).
    #[default]
    Unknown,
    /// Any other value.
    Other(String),
}

impl InstanceState {
    /// Parses a wire value; never fails.
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => InstanceState::Created,
            "deploying" => InstanceState::Deploying,
            "provisioned" => InstanceState::Provisioned,
            "available" => InstanceState::Available,
            "deleting" => InstanceState::Deleting,
            "deleted" => InstanceState::Deleted,
            "failed" => InstanceState::Failed,
            "unknown" => InstanceState::Unknown,
            other => InstanceState::Other(other.to_owned()),
        }
    }

    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            InstanceState::Created => "created",
            InstanceState::Deploying => "deploying",
            InstanceState::Provisioned => "provisioned",
            InstanceState::Available => "available",
            InstanceState::Deleting => "deleting",
            InstanceState::Deleted => "deleted",
            InstanceState::Failed => "failed",
            InstanceState::Unknown => "unknown",
            InstanceState::Other(s) => s,
        }
    }
}

impl Serialize for InstanceState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InstanceState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => InstanceState::parse(&s),
            Value::Null => InstanceState::Unknown,
            other => InstanceState::Other(other.to_string()),
        })
    }
}

fn opt_string<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_vec<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(match Value::deserialize(d)? {
        Value::Array(a) => a
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        _ => vec![],
    })
}

fn lenient_context<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<InstanceContext>, D::Error> {
    Ok(match Value::deserialize(d)? {
        v @ Value::Object(_) => serde_json::from_value(v).ok(),
        _ => None,
    })
}

/// The `context` of an instance record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstanceContext {
    /// The organization GUID.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub organization_guid: Option<String>,
    /// The space GUID.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub space_guid: Option<String>,
    /// The instance parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A binding entry of an instance record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// The broker database id.
    #[serde(
        default,
        deserialize_with = "opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<i64>,
    /// The broker database id of the instance.
    #[serde(
        default,
        deserialize_with = "opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub instance_id: Option<i64>,
    /// The OSB binding id.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub guid_at_tenant: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An a9s instance record (`GET /instances/{id}`, spec 12.2). Every field is optional on
/// the wire; wrong types are read as absent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// The broker database id (not the OSB id).
    #[serde(
        default,
        deserialize_with = "opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<i64>,
    /// The OSB instance id.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub guid_at_tenant: Option<String>,
    /// The catalog plan id.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub plan_guid: Option<String>,
    /// The catalog service id.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_guid: Option<String>,
    /// The lifecycle state.
    #[serde(default)]
    pub state: InstanceState,
    /// The context.
    #[serde(
        default,
        deserialize_with = "lenient_context",
        skip_serializing_if = "Option::is_none"
    )]
    pub context: Option<InstanceContext>,
    /// The dashboard URL.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub dashboard_url: Option<String>,
    /// The BOSH deployment name.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub deployment_name: Option<String>,
    /// The tenant.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub tenant_id: Option<String>,
    /// When provisioning finished (ISO 8601).
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub provisioned_at: Option<String>,
    /// When the record was created.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<String>,
    /// When the record was last updated.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at: Option<String>,
    /// When the instance was deleted; absent or null while alive.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub deleted_at: Option<String>,
    /// The bindings.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub credentials: Vec<CredentialRecord>,
    /// VM details (opaque).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_details: Option<Value>,
    /// Unknown fields (`allowed_update_time`, `is_locked`, `deleted`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl InstanceRecord {
    /// True when the instance is gone (state `deleted` or a `deleted_at` timestamp).
    pub fn is_deleted(&self) -> bool {
        self.state == InstanceState::Deleted || self.deleted_at.is_some()
    }
}

/// One page of `GET /instances`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstancePage {
    /// Total records.
    #[serde(
        default,
        deserialize_with = "opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_results: Option<u64>,
    /// Total pages.
    #[serde(
        default,
        deserialize_with = "opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_pages: Option<u64>,
    /// This page's number.
    #[serde(
        default,
        deserialize_with = "opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub current_page: Option<u64>,
    /// The previous page.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub prev_url: Option<String>,
    /// The next page; `None` on the last page.
    #[serde(
        default,
        deserialize_with = "opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_url: Option<String>,
    /// The records.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub resources: Vec<InstanceRecord>,
}

/// An instance fetched with its parameters (`GET /v2/service_instances/{id}` on the a9s
/// broker, which adds the non-spec `id` and `context`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct A9sInstance {
    /// The non-spec `id` field.
    pub id: Option<String>,
    /// The service id.
    pub service_id: Option<String>,
    /// The plan id.
    pub plan_id: Option<String>,
    /// The dashboard URL.
    pub dashboard_url: Option<String>,
    /// The parameters.
    pub parameters: Option<Value>,
    /// The non-spec `context`.
    pub context: Option<Value>,
    /// Other unknown fields.
    pub extra: Map<String, Value>,
}

impl From<klutch_osb::InstanceBody> for A9sInstance {
    fn from(b: klutch_osb::InstanceBody) -> Self {
        let mut extra = b.extra;
        let id = match extra.remove("id") {
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let context = extra.remove("context").filter(|v| !v.is_null());
        A9sInstance {
            id,
            service_id: b.service_id,
            plan_id: b.plan_id,
            dashboard_url: b.dashboard_url,
            parameters: b.parameters,
            context,
            extra,
        }
    }
}

fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// A new a9s instance id: `<UUID v4>-<unix seconds>`.
///
/// ```
/// let id = klutch_a9s::broker::generate_instance_id();
/// let (uuid, secs) = id.rsplit_once('-').unwrap();
/// assert_eq!(uuid.len(), 36);
/// assert!(secs.parse::<u64>().is_ok());
/// ```
pub fn generate_instance_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{}-{secs}", uuid::Uuid::new_v4())
}

/// Finds the catalog service for a wanted name: `N == wanted` or `N` starts with
/// `wanted-` (catalog names carry a deployment suffix). Exactly one match is required.
///
/// ```
/// use klutch_a9s::broker::match_service;
/// let catalog: klutch_osb::Catalog = serde_json::from_value(serde_json::json!({"services": [
///     {"id": "s1", "name": "a9s-postgresql11-ms-1687789907", "description": "d", "bindable": true,
///      "plans": [{"id": "p1", "name": "postgresql-single-nano", "description": "d"}]}
/// ]})).unwrap();
/// assert_eq!(match_service(&catalog, "a9s-postgresql11").unwrap().id, "s1");
/// assert!(match_service(&catalog, "a9s-postgresql").is_err());
/// ```
pub fn match_service<'c>(catalog: &'c Catalog, wanted: &str) -> Result<&'c Service> {
    let prefix = format!("{wanted}-");
    let matches: Vec<&Service> = catalog
        .services
        .iter()
        .filter(|s| s.name == wanted || s.name.starts_with(&prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        _ => Err(BrokerExtError::MatchService {
            wanted: wanted.to_owned(),
            candidates: matches.iter().map(|s| s.name.clone()).collect(),
        }),
    }
}

/// Finds a plan by exact name in a service.
pub fn match_plan<'c>(service: &'c Service, wanted: &str) -> Result<&'c Plan> {
    service
        .plans
        .iter()
        .find(|p| p.name == wanted)
        .ok_or_else(|| BrokerExtError::MatchPlan {
            service: service.name.clone(),
            wanted: wanted.to_owned(),
        })
}

/// An a9s Service Broker client: the OSB client plus the a9s extensions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct A9sBroker {
    transport: Transport,
    osb: klutch_osb::Client,
    health_endpoint: String,
}

impl A9sBroker {
    /// Builds the client. The OSB client shares the HTTP client (and so the TLS settings),
    /// speaks version 2.14 and sends no request identity.
    pub fn new(config: HttpConfig) -> Result<Self> {
        let transport = config
            .build()
            .map_err(|source| BrokerExtError::Configure { source })?;
        let mut b = klutch_osb::Client::builder(transport.base_url())
            .api_version(ApiVersion::V2_14)
            .version_header(A9S_API_VERSION)
            .timeout(transport.timeout())
            .request_identity(RequestIdentity::Off)
            .http_client(transport.http().clone());
        if let (Some(u), Some(p)) = (transport.username(), transport.password()) {
            b = b.basic_auth(u, p.expose_secret());
        }
        let osb = b
            .build()
            .map_err(|source| BrokerExtError::ConfigureOsb { source })?;
        Ok(A9sBroker {
            transport,
            osb,
            health_endpoint: DEFAULT_HEALTH_ENDPOINT.to_owned(),
        })
    }

    /// Uses another health endpoint, e.g. [`CURRENT_HEALTH_ENDPOINT`].
    pub fn with_health_endpoint(mut self, path: impl Into<String>) -> Self {
        let p: String = path.into();
        self.health_endpoint = if p.starts_with('/') {
            p
        } else {
            format!("/{p}")
        };
        self
    }

    /// The OSB client for the standard endpoints (catalog, provision, bind, ...).
    pub fn osb(&self) -> &klutch_osb::Client {
        &self.osb
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        self.transport.base_url()
    }

    async fn get_ext(
        &self,
        path: &str,
    ) -> std::result::Result<crate::transport::RawResponse, CallError> {
        self.transport
            .send(
                Method::GET,
                path,
                &[(klutch_osb::client::VERSION_HEADER, A9S_API_VERSION)],
                None,
                None,
            )
            .await
    }

    /// `GET /instances/{id}`: the instance record. 404 (`InstanceNotFound`) = unknown id.
    pub async fn instance(&self, instance_id: &str) -> Result<InstanceRecord> {
        let err = |source| BrokerExtError::GetInstance {
            instance_id: instance_id.to_owned(),
            source,
        };
        non_empty("instance_id", instance_id).map_err(err)?;
        let raw = self
            .get_ext(&format!("/instances/{}", encode(instance_id)))
            .await
            .map_err(err)?;
        raw.ok_json().map_err(err)
    }

    /// One page of `GET /instances`; `page_url` is a `next_url` from a previous page
    /// (absolute, or a path below the base URL), `None` for the first page.
    pub async fn list_instances_page(&self, page_url: Option<&str>) -> Result<InstancePage> {
        let err = |source| BrokerExtError::ListInstances { source };
        let page = page_url.unwrap_or("/instances");
        if page.contains("://") && !same_origin(self.transport.base_url(), page) {
            // Never send the broker credentials to another host.
            return Err(err(CallError::InvalidRequest {
                reason: format!("next_url {page:?} points outside the broker's origin"),
            }));
        }
        let raw = self.get_ext(page).await.map_err(err)?;
        raw.ok_json().map_err(err)
    }

    /// All instance records, following `next_url` until it is null (at most [`MAX_PAGES`]
    /// pages; a repeated `next_url` ends the walk; a `next_url` on another origin is an
    /// error, so the credentials never leave the broker).
    pub async fn list_instances(&self) -> Result<Vec<InstanceRecord>> {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let page = self.list_instances_page(next.as_deref()).await?;
            all.extend(page.resources);
            match page.next_url.filter(|u| !u.is_empty()) {
                Some(u) if seen.insert(u.clone()) => next = Some(u),
                _ => break,
            }
        }
        Ok(all)
    }

    /// `HEAD {health endpoint}`: [`Health::Healthy`] for 200, unhealthy for any other status.
    pub async fn health(&self) -> Result<Health> {
        let raw = self
            .transport
            .send(
                Method::HEAD,
                &self.health_endpoint,
                &[(klutch_osb::client::VERSION_HEADER, A9S_API_VERSION)],
                None,
                None,
            )
            .await
            .map_err(|source| BrokerExtError::Health { source })?;
        Ok(if raw.status.as_u16() == 200 {
            Health::Healthy
        } else {
            Health::Unhealthy {
                status: raw.status.as_u16(),
            }
        })
    }

    /// `GET /v2/service_instances/{id}` with the `instances_retrievable` gate overridden
    /// (the a9s broker serves it regardless of its catalog).
    pub async fn fetch_instance(&self, instance_id: &str) -> Result<A9sInstance> {
        let opts = CallOptions::new().override_gates();
        self.osb
            .fetch_instance(instance_id, None, None, &opts)
            .await
            .map(|r| A9sInstance::from(r.outcome))
            .map_err(|source| BrokerExtError::FetchInstance {
                instance_id: instance_id.to_owned(),
                source,
            })
    }

    /// `GET /v2/service_instances/{id}/last_operation` with `operation`, `service_id` and
    /// `plan_id` (the Go client sent only `operation`).
    pub async fn last_operation(
        &self,
        instance_id: &str,
        service_id: &str,
        plan_id: &str,
        operation: Option<&str>,
    ) -> Result<LastOperationReply> {
        let q = LastOperationQuery {
            service_id: Some(service_id.to_owned()),
            plan_id: Some(plan_id.to_owned()),
            operation: operation
                .filter(|o| !o.is_empty())
                .map(|o| OperationKey(o.to_owned())),
        };
        self.osb
            .instance_last_operation(instance_id, &q, &CallOptions::new())
            .await
            .map(|r| r.outcome)
            .map_err(|source| BrokerExtError::LastOperation {
                instance_id: instance_id.to_owned(),
                source,
            })
    }

    /// Generates an instance id the broker has never seen: `GET /instances/{id}` must answer
    /// 404; a 200 means a collision and a new id is generated (at most
    /// [`MAX_ID_ATTEMPTS`] times); any other answer aborts.
    pub async fn unique_instance_id(&self) -> Result<String> {
        self.unique_instance_id_with(generate_instance_id).await
    }

    /// Like [`A9sBroker::unique_instance_id`] with a custom generator (for tests).
    pub async fn unique_instance_id_with(
        &self,
        mut generate: impl FnMut() -> String,
    ) -> Result<String> {
        for _ in 0..MAX_ID_ATTEMPTS {
            let id = generate();
            match self.instance(&id).await {
                Ok(_) => {
                    tracing::info!(instance_id = %id, "generated instance id exists; generating again");
                }
                Err(BrokerExtError::GetInstance { source, .. }) if source.is_not_found() => {
                    return Ok(id);
                }
                Err(BrokerExtError::GetInstance {
                    instance_id,
                    source,
                }) => {
                    return Err(BrokerExtError::CheckInstanceId {
                        instance_id,
                        source,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(BrokerExtError::GenerateInstanceId {
            attempts: MAX_ID_ATTEMPTS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instance_record_fixture_field_by_field() {
        let r: InstanceRecord = serde_json::from_value(json!({
            "id": 1, "guid_at_tenant": "76c63662-5b66-4d8f-b079-423ce962bc43-1706599907",
            "plan_guid": "9b4a988a", "service_guid": "0b87d5f0", "state": "provisioned",
            "context": {"organization_guid": "a1d46b5c", "space_guid": "1bf71cf3", "parameters": {}},
            "deployment_name": "ncd98aba", "tenant_id": "anynines",
            "provisioned_at": "2024-01-30T08:15:35.202Z", "created_at": "2024-01-30T07:31:48.614Z",
            "updated_at": "2024-01-30T08:17:36.190Z", "allowed_update_time": {"type": "general", "allowed": true},
            "is_locked": false, "credentials": [{"id": 3, "instance_id": 1, "guid_at_tenant": "b-1"}],
            "deleted_at": null
        }))
        .unwrap();
        assert_eq!(r.id, Some(1));
        assert_eq!(
            r.guid_at_tenant.as_deref(),
            Some("76c63662-5b66-4d8f-b079-423ce962bc43-1706599907")
        );
        assert_eq!(r.plan_guid.as_deref(), Some("9b4a988a"));
        assert_eq!(r.service_guid.as_deref(), Some("0b87d5f0"));
        assert_eq!(r.state, InstanceState::Provisioned);
        let ctx = r.context.as_ref().unwrap();
        assert_eq!(ctx.organization_guid.as_deref(), Some("a1d46b5c"));
        assert_eq!(ctx.space_guid.as_deref(), Some("1bf71cf3"));
        assert_eq!(ctx.parameters, Some(json!({})));
        assert_eq!(r.deployment_name.as_deref(), Some("ncd98aba"));
        assert_eq!(r.tenant_id.as_deref(), Some("anynines"));
        assert_eq!(
            r.provisioned_at.as_deref(),
            Some("2024-01-30T08:15:35.202Z")
        );
        assert_eq!(r.created_at.as_deref(), Some("2024-01-30T07:31:48.614Z"));
        assert_eq!(r.updated_at.as_deref(), Some("2024-01-30T08:17:36.190Z"));
        assert_eq!(r.deleted_at, None);
        assert!(!r.is_deleted());
        assert_eq!(r.credentials.len(), 1);
        assert_eq!(r.credentials[0].guid_at_tenant.as_deref(), Some("b-1"));
        assert_eq!(r.extra["is_locked"], json!(false));
        assert_eq!(r.extra["allowed_update_time"]["type"], json!("general"));
    }

    #[test]
    fn instance_record_never_fails_on_odd_types() {
        for v in [
            json!({}),
            json!({"id": "x", "state": 5, "context": "nope", "credentials": {"a": 1}, "created_at": false}),
            json!({"state": null, "credentials": [1, "x", {"id": 2}]}),
        ] {
            let r: InstanceRecord = serde_json::from_value(v).unwrap();
            assert!(r.credentials.len() <= 1);
        }
    }

    #[test]
    fn states() {
        for s in [
            "created",
            "deploying",
            "provisioned",
            "available",
            "deleting",
            "deleted",
            "failed",
            "unknown",
            "migrating",
        ] {
            assert_eq!(InstanceState::parse(s).as_str(), s);
        }
        assert_eq!(
            InstanceState::parse("migrating"),
            InstanceState::Other("migrating".into())
        );
    }

    fn catalog(names: &[&str]) -> Catalog {
        let services: Vec<Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                json!({"id": format!("s{i}"), "name": n, "description": "d", "bindable": true,
                "plans": [{"id": format!("p{i}"), "name": "nano", "description": "d"}]})
            })
            .collect();
        serde_json::from_value(json!({ "services": services })).unwrap()
    }

    #[test]
    fn service_matching() {
        let c = catalog(&[
            "a9s-postgresql11-ms-1",
            "a9s-postgresql13",
            "a9s-mongodb-x-2",
        ]);
        assert_eq!(match_service(&c, "a9s-postgresql11").unwrap().id, "s0");
        assert_eq!(match_service(&c, "a9s-postgresql13").unwrap().id, "s1");
        assert_eq!(match_service(&c, "a9s-mongodb").unwrap().id, "s2");
        let e = match_service(&c, "a9s-postgresql").unwrap_err();
        assert!(
            e.to_string().contains("Service Offering does not exist"),
            "{e}"
        );
        let c = catalog(&["a9s-pg-1", "a9s-pg-2"]);
        let e = match_service(&c, "a9s-pg").unwrap_err();
        assert!(
            matches!(&e, BrokerExtError::MatchService { candidates, .. } if candidates.len() == 2)
        );
        assert!(e.to_string().contains("a9s-pg-1, a9s-pg-2"), "{e}");
        let s = match_service(&c, "a9s-pg-1").unwrap();
        assert_eq!(match_plan(s, "nano").unwrap().id, "p0");
        assert!(matches!(
            match_plan(s, "Nano"),
            Err(BrokerExtError::MatchPlan { .. })
        ));
    }

    #[test]
    fn a9s_instance_from_body() {
        let b: klutch_osb::InstanceBody = serde_json::from_value(json!({
            "id": "i-1", "service_id": "s", "plan_id": "p", "dashboard_url": "http://d",
            "parameters": {"a": 1}, "context": {"platform": "kubernetes"}, "x": true
        }))
        .unwrap();
        let i = A9sInstance::from(b);
        assert_eq!(i.id.as_deref(), Some("i-1"));
        assert_eq!(i.context, Some(json!({"platform": "kubernetes"})));
        assert_eq!(i.parameters, Some(json!({"a": 1})));
        assert_eq!(i.extra.len(), 1);
    }
}

//! Request and response bodies (spec 9.2, 9.3). Requests are what callers build; the wire
//! bodies are derived from them per API version in `client`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::MaintenanceInfo;
use crate::context::Context;

/// A provision request (`PUT /v2/service_instances/{id}`).
///
/// ```
/// use klutch_osb::{Context, ProvisionRequest};
/// let req = ProvisionRequest::new("service-id", "plan-id")
///     .context(Context::kubernetes("team-a", "cluster-1"))
///     .parameter("size", 3);
/// assert_eq!(req.organization_guid, None); // synthesised from the context when sent
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProvisionRequest {
    /// Catalog service id.
    pub service_id: String,
    /// Catalog plan id.
    pub plan_id: String,
    /// Deprecated but required by brokers; synthesised from the context when `None`.
    pub organization_guid: Option<String>,
    /// Deprecated but required by brokers; synthesised from the context when `None`.
    pub space_guid: Option<String>,
    /// Platform context (2.12).
    pub context: Option<Context>,
    /// Configuration parameters (any JSON object).
    pub parameters: Option<Map<String, Value>>,
    /// Maintenance info of the plan (2.15).
    pub maintenance_info: Option<MaintenanceInfo>,
}

impl ProvisionRequest {
    /// A request for a service and plan id.
    pub fn new(service_id: impl Into<String>, plan_id: impl Into<String>) -> Self {
        ProvisionRequest {
            service_id: service_id.into(),
            plan_id: plan_id.into(),
            ..Default::default()
        }
    }

    /// Sets the organization and space GUIDs.
    pub fn guids(
        mut self,
        organization_guid: impl Into<String>,
        space_guid: impl Into<String>,
    ) -> Self {
        self.organization_guid = Some(organization_guid.into());
        self.space_guid = Some(space_guid.into());
        self
    }

    /// Sets the context.
    pub fn context(mut self, context: Context) -> Self {
        self.context = Some(context);
        self
    }

    /// The `organization_guid` and `space_guid` this request is sent with: the ones set with
    /// [`Self::guids`], else those of the context ([`Context::guids`]: Cloud Foundry
    /// `organization_guid`/`space_guid`; Kubernetes `clusterid` → `organization_guid` and
    /// `namespace` → `space_guid`). `None` when neither gives both (the request is then
    /// rejected before sending).
    ///
    /// ```
    /// use klutch_osb::{Context, ProvisionRequest};
    /// let req = ProvisionRequest::new("s", "p").context(Context::kubernetes("team-a", "cluster-1"));
    /// assert_eq!(req.effective_guids(), Some(("cluster-1".into(), "team-a".into())));
    /// ```
    pub fn effective_guids(&self) -> Option<(String, String)> {
        let from_context = self.context.as_ref().and_then(Context::guids);
        let org = self
            .organization_guid
            .clone()
            .or_else(|| from_context.as_ref().map(|g| g.0.clone()))
            .filter(|s| !s.is_empty())?;
        let space = self
            .space_guid
            .clone()
            .or_else(|| from_context.map(|g| g.1))
            .filter(|s| !s.is_empty())?;
        Some((org, space))
    }

    /// Adds one parameter.
    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.parameters
            .get_or_insert_with(Map::new)
            .insert(key.into(), value.into());
        self
    }

    /// Sets all parameters.
    pub fn parameters(mut self, parameters: Map<String, Value>) -> Self {
        self.parameters = Some(parameters);
        self
    }

    /// Sets the maintenance info.
    pub fn maintenance_info(mut self, mi: MaintenanceInfo) -> Self {
        self.maintenance_info = Some(mi);
        self
    }
}

/// An update request (`PATCH /v2/service_instances/{id}`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateRequest {
    /// Catalog service id.
    pub service_id: String,
    /// The new plan id; `None` = no plan change.
    pub plan_id: Option<String>,
    /// Changed parameters only; `None` = no change.
    pub parameters: Option<Map<String, Value>>,
    /// Platform context (2.12).
    pub context: Option<Context>,
    /// Requested maintenance info (2.15).
    pub maintenance_info: Option<MaintenanceInfo>,
    /// Values before the update.
    pub previous_values: Option<PreviousValues>,
}

impl UpdateRequest {
    /// An update of an instance of `service_id`.
    pub fn new(service_id: impl Into<String>) -> Self {
        UpdateRequest {
            service_id: service_id.into(),
            ..Default::default()
        }
    }

    /// Changes the plan.
    pub fn plan(mut self, plan_id: impl Into<String>) -> Self {
        self.plan_id = Some(plan_id.into());
        self
    }

    /// Adds one parameter.
    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.parameters
            .get_or_insert_with(Map::new)
            .insert(key.into(), value.into());
        self
    }

    /// Sets the context.
    pub fn context(mut self, context: Context) -> Self {
        self.context = Some(context);
        self
    }

    /// Sets the maintenance info.
    pub fn maintenance_info(mut self, mi: MaintenanceInfo) -> Self {
        self.maintenance_info = Some(mi);
        self
    }

    /// Sets the previous values.
    pub fn previous_values(mut self, pv: PreviousValues) -> Self {
        self.previous_values = Some(pv);
        self
    }

    /// True when only the context would change (no plan, parameters or maintenance info).
    pub fn is_context_only(&self) -> bool {
        self.context.is_some()
            && self.plan_id.is_none()
            && self.parameters.is_none()
            && self.maintenance_info.is_none()
    }
}

/// `previous_values` of an update.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PreviousValues {
    /// The plan before the update (also sent as `plan_id` on polling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// Deprecated: the service id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// Deprecated: the organization id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// Deprecated: the space id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_id: Option<String>,
    /// The maintenance info before the update (2.15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_info: Option<MaintenanceInfo>,
}

/// A bind request (`PUT .../service_bindings/{binding_id}`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BindRequest {
    /// Catalog service id.
    pub service_id: String,
    /// Catalog plan id.
    pub plan_id: String,
    /// The resource being bound.
    pub bind_resource: Option<BindResource>,
    /// Also send the deprecated top-level `app_guid` (copied from `bind_resource.app_guid`).
    pub send_deprecated_app_guid: bool,
    /// Platform context (2.13).
    pub context: Option<Context>,
    /// Configuration parameters.
    pub parameters: Option<Map<String, Value>>,
}

impl BindRequest {
    /// A bind request for a service and plan id.
    pub fn new(service_id: impl Into<String>, plan_id: impl Into<String>) -> Self {
        BindRequest {
            service_id: service_id.into(),
            plan_id: plan_id.into(),
            ..Default::default()
        }
    }

    /// Sets the bind resource.
    pub fn bind_resource(mut self, r: BindResource) -> Self {
        self.bind_resource = Some(r);
        self
    }

    /// Sets the context.
    pub fn context(mut self, context: Context) -> Self {
        self.context = Some(context);
        self
    }

    /// Adds one parameter.
    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.parameters
            .get_or_insert_with(Map::new)
            .insert(key.into(), value.into());
        self
    }
}

/// `bind_resource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BindResource {
    /// The application GUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_guid: Option<String>,
    /// The route (for route services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// CF: the space GUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_guid: Option<String>,
    /// CF: application annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_annotations: Option<Map<String, Value>>,
    /// CF: credential client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_client_id: Option<String>,
    /// Other properties.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A binding rotation request (2.17): a bind of a new binding id with `predecessor_binding_id`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RotateRequest {
    /// Catalog service id (sent as well; brokers generated from the OpenAPI file need it).
    pub service_id: String,
    /// Catalog plan id.
    pub plan_id: String,
    /// The binding being rotated.
    pub predecessor_binding_id: String,
}

/// Response metadata of an instance (`labels`, `attributes`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstanceMetadata {
    /// Labels (2.16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Map<String, Value>>,
    /// Attributes (2.17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    /// Other properties.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A fetched service instance (`GET /v2/service_instances/{id}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstanceBody {
    /// The service id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// The plan id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// The dashboard URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// The instance's parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Current maintenance info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_info: Option<MaintenanceInfo>,
    /// Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<InstanceMetadata>,
    /// Unknown fields (a9s sends `id` and `context`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Binding credentials: any JSON object. `Debug` shows only the keys.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Credentials(Map<String, Value>);

impl Credentials {
    /// Wraps a credentials object.
    pub fn new(map: Map<String, Value>) -> Self {
        Credentials(map)
    }

    /// The credentials. Never log the result.
    pub fn expose(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Consumes into the credentials object. Never log the result.
    pub fn into_inner(self) -> Map<String, Value> {
        self.0
    }

    /// True when there are no credentials.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("keys", &self.0.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A binding (bind 200/201, fetch binding 200).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BindingBody {
    /// Credentials (a JSON object; hidden from `Debug`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::parse::credentials"
    )]
    pub credentials: Option<Credentials>,
    /// Syslog drain URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog_drain_url: Option<String>,
    /// Route service URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_service_url: Option<String>,
    /// Volume mounts.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::parse::null_default"
    )]
    pub volume_mounts: Vec<VolumeMount>,
    /// Network endpoints (2.15).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::parse::null_default"
    )]
    pub endpoints: Vec<Endpoint>,
    /// Binding metadata (2.16/2.17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BindingMetadata>,
    /// The binding's parameters (fetch only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A volume mount of a binding.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VolumeMount {
    /// Volume driver.
    #[serde(default)]
    pub driver: String,
    /// Mount path in the container.
    #[serde(default)]
    pub container_dir: String,
    /// `r` or `rw`.
    #[serde(default)]
    pub mode: String,
    /// `shared`.
    #[serde(default)]
    pub device_type: String,
    /// The device.
    #[serde(default)]
    pub device: VolumeDevice,
}

/// `volume_mounts[].device`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VolumeDevice {
    /// Volume id.
    #[serde(default)]
    pub volume_id: String,
    /// Driver configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_config: Option<Map<String, Value>>,
}

/// A network endpoint of a binding. Ports are strings (`"443"`, `"9000-9010"`); numbers sent by
/// deviating brokers are accepted and converted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Endpoint {
    /// Host name or IP.
    #[serde(default)]
    pub host: String,
    /// Ports or port ranges.
    #[serde(default, deserialize_with = "crate::parse::ports")]
    pub ports: Vec<String>,
    /// `tcp` (default), `udp` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// Binding metadata.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BindingMetadata {
    /// ISO 8601 expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// ISO 8601 time after which the binding should be rotated (2.17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<String>,
    /// Other properties.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `state` of a last_operation answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationState {
    /// `in progress`.
    InProgress,
    /// `succeeded`.
    Succeeded,
    /// `failed`.
    Failed,
}

/// A last_operation 200 body.
#[derive(Debug, Clone, PartialEq)]
pub struct LastOperation {
    /// The state.
    pub state: OperationState,
    /// User-facing text.
    pub description: Option<String>,
    /// `instance_usable` (failed update/deprovision); absent = true.
    pub instance_usable: Option<bool>,
    /// `update_repeatable` (failed update); absent = true.
    pub update_repeatable: Option<bool>,
}

/// An `operation` key returned with a 202 and echoed byte-for-byte when polling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OperationKey(pub String);

impl OperationKey {
    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for OperationKey {
    fn from(s: &str) -> Self {
        OperationKey(s.to_owned())
    }
}

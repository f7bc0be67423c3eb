//! The catalog (`GET /v2/catalog`, spec 9.1): services, plans, schemas, `maintenance_info`,
//! flags, lookups by name and id, effective flag values and a validation report.

use std::collections::HashSet;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// The broker's catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Catalog {
    /// The service offerings (may be empty).
    #[serde(default, deserialize_with = "crate::parse::null_default")]
    pub services: Vec<Service>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A service offering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Service {
    /// Unique, stable id.
    #[serde(default)]
    pub id: String,
    /// Unique CLI-friendly name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Tags.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::parse::null_default"
    )]
    pub tags: Vec<String>,
    /// Platform permissions needed (`syslog_drain`, `route_forwarding`, `volume_mount`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::parse::null_default"
    )]
    pub requires: Vec<String>,
    /// Whether instances can be bound (default for the plans).
    #[serde(default)]
    pub bindable: bool,
    /// Whether fetch instance is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances_retrievable: Option<bool>,
    /// Whether fetch binding is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindings_retrievable: Option<bool>,
    /// Whether context-only updates are allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_context_updates: Option<bool>,
    /// Whether plan changes are supported (default for the plans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_updateable: Option<bool>,
    /// Opaque metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// OAuth client for the dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_client: Option<DashboardClient>,
    /// The plans.
    #[serde(default, deserialize_with = "crate::parse::null_default")]
    pub plans: Vec<Plan>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A plan of a service offering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Plan {
    /// Unique, stable id.
    #[serde(default)]
    pub id: String,
    /// Name, unique within its service.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Opaque metadata (`bullets`, `costs`, `displayName`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Free of charge; absent means `true` (see [`Plan::is_free`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<bool>,
    /// Overrides the service's `bindable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindable: Option<bool>,
    /// Overrides the service's `plan_updateable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_updateable: Option<bool>,
    /// Whether bindings of this plan can be rotated (2.17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_rotatable: Option<bool>,
    /// JSON schemas for parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemas: Option<Schemas>,
    /// Seconds after which an asynchronous operation counts as failed (2.15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_polling_duration: Option<u64>,
    /// Maintenance info of the plan (2.15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_info: Option<MaintenanceInfo>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `maintenance_info` (compared by `version` only).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct MaintenanceInfo {
    /// A SemVer 2.0 version.
    #[serde(default)]
    pub version: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl MaintenanceInfo {
    /// Maintenance info with only a version.
    pub fn version(version: impl Into<String>) -> Self {
        MaintenanceInfo {
            version: version.into(),
            description: None,
        }
    }
}

impl PartialEq for MaintenanceInfo {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
    }
}

/// OAuth client data for a dashboard SSO integration. The secret never appears in `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct DashboardClient {
    /// OAuth client id.
    #[serde(default)]
    pub id: String,
    /// OAuth client secret.
    #[serde(default = "empty_secret", serialize_with = "ser_secret")]
    pub secret: SecretString,
    /// Redirect URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

fn empty_secret() -> SecretString {
    SecretString::from(String::new())
}

fn ser_secret<S: Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

impl fmt::Debug for DashboardClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardClient")
            .field("id", &self.id)
            .field("secret", &"[REDACTED]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl PartialEq for DashboardClient {
    fn eq(&self, o: &Self) -> bool {
        self.id == o.id
            && self.redirect_uri == o.redirect_uri
            && self.secret.expose_secret() == o.secret.expose_secret()
    }
}

/// Parameter schemas of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Schemas {
    /// Instance schemas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_instance: Option<ServiceInstanceSchemas>,
    /// Binding schemas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_binding: Option<ServiceBindingSchemas>,
}

/// `schemas.service_instance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServiceInstanceSchemas {
    /// Provision parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<InputParameters>,
    /// Update parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<InputParameters>,
}

/// `schemas.service_binding`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServiceBindingSchemas {
    /// Bind parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<InputParameters>,
}

/// `{ "parameters": <JSON schema> }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InputParameters {
    /// The JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

impl Catalog {
    /// The service with this exact name.
    pub fn service_by_name(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The service with this id.
    pub fn service_by_id(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The service and plan with these names.
    ///
    /// ```
    /// # let catalog: klutch_osb::Catalog = serde_json::from_str(r#"{"services":[{"id":"s","name":"pg","description":"d","bindable":true,"plans":[{"id":"p","name":"small","description":"d"}]}]}"#).unwrap();
    /// let (service, plan) = catalog.plan_by_name("pg", "small").unwrap();
    /// assert_eq!((service.id.as_str(), plan.id.as_str()), ("s", "p"));
    /// ```
    pub fn plan_by_name(&self, service: &str, plan: &str) -> Option<(&Service, &Plan)> {
        let s = self.service_by_name(service)?;
        Some((s, s.plan_by_name(plan)?))
    }

    /// The service and plan for a plan id (and optionally a service id).
    pub fn plan_by_id(&self, service_id: Option<&str>, plan_id: &str) -> Option<(&Service, &Plan)> {
        self.services
            .iter()
            .filter(|s| service_id.is_none_or(|id| s.id == id))
            .find_map(|s| s.plan_by_id(plan_id).map(|p| (s, p)))
    }

    /// Checks the catalog against the spec's rules (9.1); an empty report means valid.
    pub fn validate(&self) -> Vec<CatalogIssue> {
        let mut issues = Vec::new();
        let mut service_ids = HashSet::new();
        let mut service_names = HashSet::new();
        let mut plan_ids = HashSet::new();
        for s in &self.services {
            let at = || {
                format!(
                    "service {:?}",
                    if s.name.is_empty() { &s.id } else { &s.name }
                )
            };
            for (field, v) in [
                ("id", &s.id),
                ("name", &s.name),
                ("description", &s.description),
            ] {
                if v.is_empty() {
                    issues.push(CatalogIssue::MissingField { at: at(), field });
                }
            }
            if !s.id.is_empty() && !service_ids.insert(s.id.as_str()) {
                issues.push(CatalogIssue::DuplicateId { id: s.id.clone() });
            }
            if !s.name.is_empty() && !service_names.insert(s.name.as_str()) {
                issues.push(CatalogIssue::DuplicateName {
                    at: "catalog".into(),
                    name: s.name.clone(),
                });
            }
            if s.plans.is_empty() {
                issues.push(CatalogIssue::MissingField {
                    at: at(),
                    field: "plans",
                });
            }
            let mut plan_names = HashSet::new();
            for p in &s.plans {
                let pat = || {
                    format!(
                        "{} plan {:?}",
                        at(),
                        if p.name.is_empty() { &p.id } else { &p.name }
                    )
                };
                for (field, v) in [
                    ("id", &p.id),
                    ("name", &p.name),
                    ("description", &p.description),
                ] {
                    if v.is_empty() {
                        issues.push(CatalogIssue::MissingField { at: pat(), field });
                    }
                }
                if !p.id.is_empty()
                    && (!plan_ids.insert(p.id.as_str())
                        || service_ids.contains(p.id.as_str()) && p.id == s.id)
                {
                    issues.push(CatalogIssue::DuplicateId { id: p.id.clone() });
                }
                if !p.name.is_empty() && !plan_names.insert(p.name.as_str()) {
                    issues.push(CatalogIssue::DuplicateName {
                        at: at(),
                        name: p.name.clone(),
                    });
                }
                if let Some(mi) = &p.maintenance_info
                    && !is_semver(&mi.version)
                {
                    issues.push(CatalogIssue::InvalidSemver {
                        at: pat(),
                        version: mi.version.clone(),
                    });
                }
                if let Some(schemas) = &p.schemas {
                    let size = serde_json::to_vec(schemas).map(|v| v.len()).unwrap_or(0);
                    if size > 64 * 1024 {
                        issues.push(CatalogIssue::OversizedSchema {
                            at: pat(),
                            bytes: size,
                        });
                    }
                }
            }
        }
        issues
    }
}

impl Service {
    /// The plan with this name.
    pub fn plan_by_name(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name == name)
    }

    /// The plan with this id.
    pub fn plan_by_id(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    /// Effective `bindable` for a plan: the plan's value, else the service's.
    pub fn effective_bindable(&self, plan: &Plan) -> bool {
        plan.bindable.unwrap_or(self.bindable)
    }

    /// Effective `plan_updateable`: plan, else service, else false.
    pub fn effective_plan_updateable(&self, plan: &Plan) -> bool {
        plan.plan_updateable
            .or(self.plan_updateable)
            .unwrap_or(false)
    }

    /// True when the service requires `what` (`syslog_drain`, `route_forwarding`,
    /// `volume_mount`).
    pub fn requires(&self, what: &str) -> bool {
        self.requires.iter().any(|r| r == what)
    }
}

impl Plan {
    /// `free`, defaulting to true.
    pub fn is_free(&self) -> bool {
        self.free.unwrap_or(true)
    }

    /// `binding_rotatable`, defaulting to false.
    pub fn is_binding_rotatable(&self) -> bool {
        self.binding_rotatable.unwrap_or(false)
    }

    /// `maximum_polling_duration` as a duration.
    pub fn max_polling_duration(&self) -> Option<std::time::Duration> {
        self.maximum_polling_duration
            .map(std::time::Duration::from_secs)
    }
}

/// A rule of spec 9.1 that the catalog breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogIssue {
    /// A required field is missing or empty.
    MissingField {
        /// Where.
        at: String,
        /// Which field.
        field: &'static str,
    },
    /// An id is used twice.
    DuplicateId {
        /// The id.
        id: String,
    },
    /// A name is used twice (services in the catalog, plans in a service).
    DuplicateName {
        /// Where.
        at: String,
        /// The name.
        name: String,
    },
    /// `maintenance_info.version` is not SemVer 2.0.
    InvalidSemver {
        /// Where.
        at: String,
        /// The value.
        version: String,
    },
    /// A plan's schemas exceed 64 kB.
    OversizedSchema {
        /// Where.
        at: String,
        /// The size.
        bytes: usize,
    },
}

impl fmt::Display for CatalogIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogIssue::MissingField { at, field } => write!(f, "{at}: missing {field}"),
            CatalogIssue::DuplicateId { id } => write!(f, "duplicate id {id:?}"),
            CatalogIssue::DuplicateName { at, name } => write!(f, "{at}: duplicate name {name:?}"),
            CatalogIssue::InvalidSemver { at, version } => {
                write!(
                    f,
                    "{at}: maintenance_info.version {version:?} is not SemVer"
                )
            }
            CatalogIssue::OversizedSchema { at, bytes } => {
                write!(f, "{at}: schemas are {bytes} bytes (max 65536)")
            }
        }
    }
}

/// A minimal SemVer 2.0 check: `MAJOR.MINOR.PATCH[-pre][+build]`.
fn is_semver(v: &str) -> bool {
    let (core, build) = v.split_once('+').map_or((v, None), |(a, b)| (a, Some(b)));
    let (core, pre) = core
        .split_once('-')
        .map_or((core, None), |(a, b)| (a, Some(b)));
    let ident_ok = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
        && pre.is_none_or(ident_ok)
        && build.is_none_or(ident_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver() {
        for ok in ["1.0.0", "10.2.3-rc.1", "1.2.3+build.5", "0.0.0-a-b+c"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["1.0", "01.0.0", "1.0.0-", "x.y.z", "", "1.0.0+"] {
            assert!(!is_semver(bad), "{bad}");
        }
    }
}

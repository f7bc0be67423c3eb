//! Condition writes on APIServiceBindings, APIServiceExports and ClusterBindings: read, change,
//! summarise `Ready`, and write a JSON merge patch of `/status` that carries the
//! `resourceVersion`, only when something changed. A conflict (409) is retried with fresh state.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::api::Severity;
use crate::api::conditions::{self, Condition, ConditionStatus};

/// How often a status write is retried after a conflict.
const CONFLICT_RETRIES: usize = 8;

/// A status write failed.
#[derive(Debug, thiserror::Error)]
#[error("write status of {kind} {name}")]
pub struct Error {
    /// Kind of the object.
    pub kind: &'static str,
    /// Namespace (empty when unknown).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

/// Now, in whole seconds (condition times are whole seconds).
pub fn now() -> Time {
    let ts = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

/// `True` condition.
pub fn ok(type_: &str) -> Condition {
    Condition::true_(type_, now())
}

/// `False` condition.
pub fn bad(type_: &str, severity: Severity, reason: &str, message: impl Into<String>) -> Condition {
    Condition::false_(type_, severity, reason, message, now())
}

/// Applies `change` to the status of `name` (read fresh on every attempt) and writes it back when
/// it changed; `Ready` is summarised over the other conditions first. A missing object is not an
/// error (nothing to report on). Returns whether a write happened.
pub async fn update<K, S>(
    api: &Api<K>,
    kind: &'static str,
    name: &str,
    change: impl Fn(&mut S),
) -> Result<bool, Error>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + HasStatus<S>,
    S: Default + Clone + PartialEq + Serialize + HasConditions,
{
    let mut attempt = 0;
    loop {
        let err = |source| Error {
            kind,
            namespace: String::new(),
            name: name.to_owned(),
            source,
        };
        let Some(obj) = api.get_opt(name).await.map_err(err)? else {
            return Ok(false);
        };
        let before = obj.status().cloned().unwrap_or_default();
        let mut after = before.clone();
        change(&mut after);
        conditions::summarize_ready(after.conditions_mut(), now());
        if after == before {
            return Ok(false);
        }
        let patch = json!({
            "metadata": { "resourceVersion": obj.meta().resource_version },
            "status": after,
        });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * attempt as u64)).await;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(false),
            Err(source) => return Err(err(source)),
        }
    }
}

/// Whether the condition `type_` is `True` in `conditions`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions::get(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True)
}

/// An object with a status of type `S`.
pub trait HasStatus<S> {
    /// The status, if any.
    fn status(&self) -> Option<&S>;
}

/// A status with a list of conditions.
pub trait HasConditions {
    /// The conditions, mutable.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
}

macro_rules! status_impls {
    ($kind:ty, $status:ty) => {
        impl HasStatus<$status> for $kind {
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
        }
        impl HasConditions for $status {
            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                &mut self.conditions
            }
        }
    };
}

status_impls!(
    crate::api::APIServiceBinding,
    crate::api::APIServiceBindingStatus
);
status_impls!(
    crate::api::APIServiceExport,
    crate::api::APIServiceExportStatus
);
status_impls!(crate::api::ClusterBinding, crate::api::ClusterBindingStatus);

/// The condition types the konnector maintains on an APIServiceBinding.
pub const BINDING_CONDITIONS: [&str; 5] = [
    "SecretValid",
    "InformersSynced",
    "Heartbeating",
    "Connected",
    "SchemaInSync",
];

/// [`update`] for APIServiceBindings: a condition the konnector has not determined yet is
/// `False` (Info, `Pending`), so `Ready` is only `True` once every one of them is.
pub async fn update_binding(
    api: &Api<crate::api::APIServiceBinding>,
    name: &str,
    change: impl Fn(&mut crate::api::APIServiceBindingStatus),
) -> Result<bool, Error> {
    update(
        api,
        "APIServiceBinding",
        name,
        |s: &mut crate::api::APIServiceBindingStatus| {
            for type_ in BINDING_CONDITIONS {
                if conditions::get(&s.conditions, type_).is_none() {
                    conditions::set(
                        &mut s.conditions,
                        bad(
                            type_,
                            Severity::Info,
                            "Pending",
                            format!("{type_} is not determined yet"),
                        ),
                    );
                }
            }
            change(s);
        },
    )
    .await
}

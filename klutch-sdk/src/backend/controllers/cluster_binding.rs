//! ClusterBinding (spec §4.5.1): the tenant's RBAC as desired state and `Healthy` from the
//! konnector's heartbeats.
//!
//! Triggers: ClusterBinding events, any APIServiceExport change in its namespace, and a timed
//! requeue when the heartbeat would time out. `HeartbeatTimeDrift` only fires for heartbeats more
//! than 10 s in the *future* (Klutch fires it for recent ones, spec §7 item 7).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::lenient::{Lenient, valid_or_report};
use super::{Context, Result, error_policy, kube_err, now};
use crate::api::conditions::{self, Condition, Severity};
use crate::api::wellknown::{BINDER_NAME, CLUSTER_BINDING_NAME};
use crate::api::{APIServiceExport, ClusterBinding};
use crate::backend::binding_space::FIELD_MANAGER;
use crate::backend::contract::BindingBackend;
use crate::backend::rbac;

/// The condition this controller sets.
pub const HEALTHY: &str = "Healthy";
/// Heartbeats further in the future than this are drift.
pub const MAX_DRIFT: SignedDuration = SignedDuration::from_secs(10);

pub(crate) async fn run<B: BindingBackend>(ctx: Arc<Context<B>>) {
    let client = ctx.client.clone();
    Controller::new(
        Api::<Lenient<ClusterBinding>>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<Lenient<APIServiceExport>>::all(client),
        watcher::Config::default(),
        |export| {
            export
                .namespace()
                .map(|ns| ObjectRef::new(CLUSTER_BINDING_NAME).within(&ns))
        },
    )
    .run(reconcile, error_policy, ctx)
    .for_each(|_| async {})
    .await;
}

/// The `Healthy` condition for a heartbeat at `last` with interval `interval` at time `now`, and
/// when to look again.
pub fn health(
    last: Option<Timestamp>,
    interval: Option<&str>,
    now: Timestamp,
) -> (Condition, Option<Duration>) {
    let t = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now);
    let Some(last) = last else {
        return (
            Condition::false_(
                HEALTHY,
                Severity::Info,
                "FirstHeartbeatPending",
                "Waiting for first heartbeat",
                t,
            ),
            None,
        );
    };
    let Some(interval) = interval
        .and_then(|i| i.parse::<SignedDuration>().ok())
        .filter(|d| d.is_positive())
    else {
        return (
            Condition::false_(
                HEALTHY,
                Severity::Info,
                "HeartbeatIntervalMissing",
                "Waiting for consumer cluster reporting its heartbeat interval",
                t,
            ),
            None,
        );
    };
    let age = now.duration_since(last);
    if age < -MAX_DRIFT {
        return (
            Condition::false_(
                HEALTHY,
                Severity::Warning,
                "HeartbeatTimeDrift",
                format!(
                    "Clocks of consumer cluster and provider cluster drift by {:#}",
                    -age
                ),
                t,
            ),
            Some(Duration::from_secs(10)),
        );
    }
    let limit = interval * 2;
    if age > limit {
        return (
            Condition::false_(
                HEALTHY,
                Severity::Error,
                "HeartbeatTimeout",
                format!(
                    "Heartbeat timeout: last heartbeat {:#} ago, expected every {:#}",
                    age, interval
                ),
                t,
            ),
            None,
        );
    }
    let left = (limit - age).unsigned_abs() + Duration::from_secs(1);
    (Condition::true_(HEALTHY, t), Some(left))
}

async fn reconcile<B: BindingBackend>(
    binding: Arc<Lenient<ClusterBinding>>,
    ctx: Arc<Context<B>>,
) -> Result<Action> {
    let Some(binding) = valid_or_report(&binding, &ctx.recorder).await else {
        return Ok(Action::await_change());
    };
    let ns_name = binding.namespace().unwrap_or_default();
    let client = &ctx.client;
    let ssa = PatchParams::apply(FIELD_MANAGER).force();
    let Some(namespace) = Api::<Namespace>::all(client.clone())
        .get_opt(&ns_name)
        .await
        .map_err(kube_err("get cluster namespace"))?
    else {
        return Ok(Action::await_change());
    };
    if namespace.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }

    // RBAC as desired state.
    // Exports the backend cannot decode grant nothing (and are reported by export refresh).
    let exports: Vec<APIServiceExport> =
        Api::<Lenient<APIServiceExport>>::namespaced(client.clone(), &ns_name)
            .list(&ListParams::default())
            .await
            .map_err(kube_err("list exports"))?
            .items
            .into_iter()
            .filter_map(|e| match e {
                Lenient::Valid(e) => Some(e),
                Lenient::Invalid(_) => None,
            })
            .collect();
    let role = rbac::tenant_cluster_role(&namespace, &exports);
    Api::<ClusterRole>::all(client.clone())
        .patch(
            &rbac::tenant_role_name(&ns_name),
            &ssa,
            &Patch::Apply(&role),
        )
        .await
        .map_err(kube_err("apply tenant ClusterRole"))?;
    Api::<RoleBinding>::namespaced(client.clone(), &ns_name)
        .patch(
            BINDER_NAME,
            &ssa,
            &Patch::Apply(&rbac::binder_role_binding(&ns_name, BINDER_NAME)),
        )
        .await
        .map_err(kube_err("apply RoleBinding klutch-binder"))?;
    let crbs = Api::<ClusterRoleBinding>::all(client.clone());
    let crb_name = rbac::tenant_role_name(&ns_name);
    if ctx.backend.cluster_scoped_consumers() {
        crbs.patch(
            &crb_name,
            &ssa,
            &Patch::Apply(&rbac::tenant_cluster_role_binding(&namespace)),
        )
        .await
        .map_err(kube_err("apply tenant ClusterRoleBinding"))?;
    } else {
        match crbs.delete(&crb_name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::warn!(name = %crb_name, "deleted a stale ClusterRoleBinding in Namespaced scope")
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(kube_err("delete stale ClusterRoleBinding")(e)),
        }
    }

    // Health.
    let status = binding.status.clone().unwrap_or_default();
    let (healthy, recheck) = health(
        status.last_heartbeat_time.as_ref().map(|t| t.0),
        status.heartbeat_interval.as_deref(),
        Timestamp::now(),
    );
    let mut conds = status.conditions.clone();
    conditions::set(&mut conds, healthy);
    conditions::summarize_ready(&mut conds, now());
    if conds != status.conditions {
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": binding.resource_version() },
            "status": { "conditions": conds },
        });
        Api::<ClusterBinding>::namespaced(client.clone(), &ns_name)
            .patch_status(
                CLUSTER_BINDING_NAME,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(kube_err("update ClusterBinding status"))?;
    }
    Ok(recheck.map_or_else(
        || Action::requeue(Duration::from_secs(300)),
        Action::requeue,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConditionStatus;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn health_follows_the_corrected_rules() {
        let now = ts("2026-01-01T00:10:00Z");
        let (c, _) = health(None, None, now);
        assert_eq!(c.reason.as_deref(), Some("FirstHeartbeatPending"));
        let (c, _) = health(Some(now), None, now);
        assert_eq!(c.reason.as_deref(), Some("HeartbeatIntervalMissing"));
        // A fresh heartbeat is healthy (Klutch reports drift here).
        let (c, again) = health(Some(ts("2026-01-01T00:09:58Z")), Some("5m0s"), now);
        assert_eq!(c.status, ConditionStatus::True);
        assert_eq!(again, Some(Duration::from_secs(598 + 1)));
        let (c, _) = health(Some(ts("2026-01-01T00:00:00Z")), Some("4m0s"), now);
        assert_eq!(c.reason.as_deref(), Some("HeartbeatTimeout"));
        assert_eq!(c.severity, Some(Severity::Error));
        let (c, _) = health(Some(ts("2026-01-01T00:10:30Z")), Some("5m0s"), now);
        assert_eq!(c.reason.as_deref(), Some("HeartbeatTimeDrift"));
        let (c, _) = health(Some(ts("2026-01-01T00:10:05Z")), Some("5m0s"), now);
        assert_eq!(c.status, ConditionStatus::True);
    }
}

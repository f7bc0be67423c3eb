//! The `providerconfig` and `confighealth` controllers (spec 3.2, 3.4) in one loop per
//! ProviderConfig: count its ProviderConfigUsages into `status.users`, keep the
//! `in-use.crossplane.io` finalizer while it has users (a deleted config in use gets
//! `Terminating`/`InUse`), and check the endpoint's health (3 min after a success, 30 s after a
//! failure; `lastCheckTime: null` forces a check).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use klutch_sdk::crossplane::{conditions, usage};
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::json;

use crate::provider::api::provider_config::Health;
use crate::provider::api::{ProviderConfig, ProviderConfigUsage, ServiceType};
use crate::provider::config::errors;
use crate::provider::meta::{IN_USE_FINALIZER, PROVIDER_CONFIG_LABEL};
use crate::provider::state::Provider;

/// Time between checks after a success.
pub const HEALTHY_INTERVAL: Duration = Duration::from_secs(180);
/// Time between checks after a failure.
pub const UNHEALTHY_INTERVAL: Duration = Duration::from_secs(30);
/// Timeout of one check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed ProviderConfig reconcile.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

fn kube_err(what: &str) -> impl Fn(kube::Error) -> ConfigError + '_ {
    move |e| ConfigError(format!("{what}: {e}"))
}

/// When the next check is due, `None` = now.
fn check_due_in(health: Option<&Health>) -> Option<Duration> {
    let h = health?;
    let last = h.last_check_time.as_ref()?;
    let interval = if h.last_status == Some(true) {
        HEALTHY_INTERVAL
    } else {
        UNHEALTHY_INTERVAL
    };
    let age: Duration = jiff::Timestamp::now()
        .duration_since(last.0)
        .try_into()
        .unwrap_or(Duration::ZERO);
    interval.checked_sub(age).filter(|d| !d.is_zero())
}

async fn check(shared: &Provider, pc: &ProviderConfig) -> Result<(), String> {
    let name = pc.name_any();
    let client = shared.client();
    match pc.spec.service_type {
        ServiceType::Servicebroker => {
            let ep = shared
                .state()
                .clients
                .broker(client, &name, "health check")
                .await
                .map_err(|e| e.message)?;
            let r = tokio::time::timeout(CHECK_TIMEOUT, ep.broker().health()).await;
            ep.record(
                "health",
                if matches!(r, Ok(Ok(_))) {
                    "ok"
                } else {
                    "error"
                },
            );
            match r {
                Err(_) => Err("health check timed out".to_owned()),
                Ok(Err(e)) => Err(errors::broker_ext(&ep.url, e).message),
                Ok(Ok(h)) if h.is_healthy() => Ok(()),
                Ok(Ok(h)) => Err(format!("{} answered {h:?}", ep.url)),
            }
        }
        ServiceType::Backupmanager => {
            let ep = shared
                .state()
                .clients
                .backup_manager(client, &name, "health check")
                .await
                .map_err(|e| e.message)?;
            let r = ep.client().health_with_timeout(Some(CHECK_TIMEOUT)).await;
            ep.record("health", if r.is_ok() { "ok" } else { "error" });
            match r {
                Err(e) => Err(errors::backup_manager(&ep.url, e).message),
                Ok(h) if h.is_healthy() => Ok(()),
                Ok(h) => Err(format!("{} answered {h:?}", ep.url)),
            }
        }
    }
}

async fn reconcile(pc: Arc<ProviderConfig>, shared: Arc<Provider>) -> Result<Action, ConfigError> {
    let name = pc.name_any();
    let api: Api<ProviderConfig> = Api::all(shared.client().clone());
    let Some(pc) = api
        .get_opt(&name)
        .await
        .map_err(kube_err("cannot get ProviderConfig"))?
    else {
        return Ok(Action::await_change());
    };
    let users = usage::users(shared.client(), shared.settings(), &name)
        .await
        .map_err(kube_err("cannot list ProviderConfigUsages"))?;
    let deleting = pc.metadata.deletion_timestamp.is_some();
    let mut status = pc.status.clone().unwrap_or_default();
    status.users = Some(users as i64);
    let finalizer = users > 0;
    let has = pc.finalizers().iter().any(|f| f == IN_USE_FINALIZER);
    if finalizer != has {
        let fins: Vec<&str> = if finalizer {
            vec![IN_USE_FINALIZER]
        } else {
            vec![]
        };
        api.patch(
            &name,
            &PatchParams::apply(&shared.settings().field_manager).force(),
            &Patch::Apply(json!({"apiVersion": crate::provider::api::API_VERSION, "kind": "ProviderConfig", "metadata": {"name": name, "finalizers": fins}})),
        )
        .await
        .map_err(kube_err("cannot update ProviderConfig finalizers"))?;
    }
    let mut requeue = Duration::from_secs(60);
    if deleting && users > 0 {
        let c = crate::provider::api::Condition {
            type_: "Terminating".into(),
            status: "True".into(),
            last_transition_time: Time(jiff::Timestamp::now()),
            reason: "InUse".into(),
            message: Some("Blocking deletion while usages still exist".into()),
            observed_generation: None,
        };
        conditions::set(&mut status.conditions, c, pc.metadata.generation);
        shared
            .event(
                &pc,
                EventType::Warning,
                "InUse",
                format!("Blocking deletion while {users} usages still exist"),
            )
            .await;
        requeue = Duration::from_secs(10);
    } else if !deleting {
        match check_due_in(status.health.as_ref()) {
            Some(d) => requeue = requeue.min(d),
            None => {
                let result = check(&shared, &pc).await;
                let before = status.health.as_ref().and_then(|h| h.last_status);
                let healthy = result.is_ok();
                status.health = Some(Health {
                    last_check_time: Some(Time(jiff::Timestamp::now())),
                    last_status: Some(healthy),
                    last_message: Some(result.clone().err().unwrap_or_else(|| "Available".into())),
                });
                if before != Some(healthy) {
                    match &result {
                        Ok(()) => {
                            shared
                                .event(
                                    &pc,
                                    EventType::Normal,
                                    "CheckSuccess",
                                    "ProviderConfig is now healthy".into(),
                                )
                                .await
                        }
                        Err(m) => {
                            shared
                                .event(
                                    &pc,
                                    EventType::Warning,
                                    "CheckFailure",
                                    format!("Health check failed: {m}"),
                                )
                                .await
                        }
                    }
                }
                requeue = if healthy {
                    HEALTHY_INTERVAL
                } else {
                    UNHEALTHY_INTERVAL
                };
            }
        }
    }
    if pc.status.as_ref() != Some(&status) {
        api.patch_status(
            &name,
            &PatchParams::apply(&shared.settings().field_manager).force(),
            &Patch::Apply(json!({"apiVersion": crate::provider::api::API_VERSION, "kind": "ProviderConfig", "metadata": {"name": name}, "status": status})),
        )
        .await
        .map_err(kube_err("cannot update ProviderConfig status"))?;
    }
    Ok(Action::requeue(requeue))
}

fn error_policy(_pc: Arc<ProviderConfig>, e: &ConfigError, _shared: Arc<Provider>) -> Action {
    tracing::warn!(error = %e, "ProviderConfig reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// Runs the ProviderConfig controller until `shutdown` completes.
pub async fn run(
    shared: Arc<Provider>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let pcs: Api<ProviderConfig> = Api::all(shared.client().clone());
    let usages: Api<ProviderConfigUsage> =
        Api::all_with(shared.client().clone(), &shared.settings().usage);
    Controller::new(pcs, watcher::Config::default())
        .watches_with(
            usages,
            shared.settings().usage.clone(),
            watcher::Config::default().labels(PROVIDER_CONFIG_LABEL),
            |u: ProviderConfigUsage| {
                Some(ObjectRef::<ProviderConfig>::new(
                    &u.provider_config_ref.name,
                ))
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, shared)
        .for_each(|_| async {})
        .await;
}

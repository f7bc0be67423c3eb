//! ClusterBinding heartbeat (§5.13) and kubeconfig rotation (§5.14) of one provider connection.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use super::connection::Provider;
use super::metrics::ResultLabels;
use super::status;
use crate::api::conditions;
use crate::api::wellknown::CLUSTER_BINDING_NAME;
use crate::api::{APIServiceBinding, ClusterBinding, ClusterBindingStatus, Severity};

/// The interval reported in `status.heartbeatInterval` (Klutch's constant).
pub const HEARTBEAT_INTERVAL: &str = "5m0s";

/// Beats until `cancel` fires: at once, then every heartbeat period.
pub async fn run(p: Arc<Provider>, cancel: CancellationToken) {
    loop {
        let ok = beat(&p).await;
        p.shared
            .metrics
            .heartbeats
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
        let wait = if ok {
            p.shared.settings.heartbeat_period
        } else {
            Duration::from_secs(5).min(p.shared.settings.heartbeat_period)
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One heartbeat: rotate the kubeconfig, then write the ClusterBinding status. Reports
/// `Heartbeating` on the member bindings; returns whether it worked.
async fn beat(p: &Provider) -> bool {
    let api: Api<ClusterBinding> = Api::namespaced(p.client.clone(), &p.namespace);
    let cb = match api.get_opt(CLUSTER_BINDING_NAME).await {
        Ok(Some(cb)) => cb,
        Ok(None) => {
            p.set_on_members(status::bad(
                "Heartbeating",
                Severity::Error,
                "ClusterBindingUpdateFailed",
                format!(
                    "ClusterBinding {}/{CLUSTER_BINDING_NAME} not found",
                    p.namespace
                ),
            ))
            .await;
            return false;
        }
        Err(e) => {
            p.set_on_members(status::bad(
                "Heartbeating",
                Severity::Error,
                "ClusterBindingUpdateFailed",
                format!("Reading the ClusterBinding failed: {e}"),
            ))
            .await;
            return false;
        }
    };
    let secret_valid = rotate(p, &cb).await;
    let (version, version_ok) = konnector_version(&p.shared.settings.version);
    let period = p.shared.settings.heartbeat_period;
    let written = status::update(
        &api,
        "ClusterBinding",
        CLUSTER_BINDING_NAME,
        |s: &mut ClusterBindingStatus| {
            s.heartbeat_interval = Some(HEARTBEAT_INTERVAL.into());
            let now = jiff::Timestamp::now();
            let stale = s
                .last_heartbeat_time
                .as_ref()
                .is_none_or(|t| now.as_second() - t.0.as_second() >= period.as_secs() as i64);
            if stale {
                s.last_heartbeat_time = Some(Time(
                    jiff::Timestamp::from_second(now.as_second()).unwrap_or(now),
                ));
            }
            s.konnector_version = Some(version.clone());
            conditions::set(
                &mut s.conditions,
                if version_ok {
                    status::ok("ValidVersion")
                } else {
                    status::bad(
                        "ValidVersion",
                        Severity::Error,
                        "ParseError",
                        format!(
                            "konnector version {:?} is not a semantic version",
                            p.shared.settings.version
                        ),
                    )
                },
            );
            conditions::set(&mut s.conditions, secret_valid.clone());
        },
    )
    .await;
    match written {
        Ok(_) => {
            p.set_on_members(status::ok("Heartbeating")).await;
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat failed");
            p.set_on_members(status::bad(
                "Heartbeating",
                Severity::Error,
                "ClusterBindingUpdateFailed",
                e.to_string(),
            ))
            .await;
            false
        }
    }
}

/// `v<semver>` and whether it parsed; `unknown` otherwise.
pub fn konnector_version(raw: &str) -> (String, bool) {
    let v = raw.strip_prefix('v').unwrap_or(raw);
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if ok {
        (format!("v{v}"), true)
    } else {
        ("unknown".into(), false)
    }
}

/// Copies the provider's kubeconfig Secret into each member binding's consumer Secret when it
/// differs. Returns the ClusterBinding's `SecretValid` condition.
async fn rotate(p: &Provider, cb: &ClusterBinding) -> conditions::Condition {
    let secret_name = &cb.spec.kubeconfig_secret_ref.name;
    let key = "kubeconfig";
    let provider_secrets: Api<Secret> = Api::namespaced(p.client.clone(), &p.namespace);
    let source = match provider_secrets.get_opt(secret_name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return status::bad(
                "SecretValid",
                Severity::Warning,
                "ProviderSecretNotFound",
                format!("Provider secret {}/{secret_name} not found", p.namespace),
            );
        }
        Err(e) => {
            return status::bad(
                "SecretValid",
                Severity::Warning,
                "ProviderSecretNotFound",
                format!(
                    "Provider secret {}/{secret_name} cannot be read: {e}",
                    p.namespace
                ),
            );
        }
    };
    if source.data.as_ref().and_then(|d| d.get(key)).is_none() {
        return status::bad(
            "SecretValid",
            Severity::Warning,
            "ProviderSecretInvalid",
            format!(
                "Provider secret {}/{secret_name} has no key {key}",
                p.namespace
            ),
        );
    }
    let members: BTreeSet<String> = p.members.borrow().clone();
    let mut targets = BTreeSet::new();
    for m in members {
        let (ns, name) = m.split_once('/').unwrap_or(("", &m));
        if let Ok(Some(b)) = Api::<APIServiceBinding>::namespaced(p.shared.consumer.clone(), ns)
            .get_opt(name)
            .await
        {
            let r = b.spec.kubeconfig_secret_ref;
            targets.insert((r.namespace, r.name));
        }
    }
    for (ns, name) in targets {
        let api: Api<Secret> = Api::namespaced(p.shared.consumer.clone(), &ns);
        let current = api.get_opt(&name).await.ok().flatten();
        let same = current
            .as_ref()
            .is_some_and(|c| c.data == source.data && c.type_ == source.type_);
        if same {
            continue;
        }
        tracing::info!(secret = %format!("{ns}/{name}"), "the provider rotated the kubeconfig; updating the consumer copy");
        let result = match current {
            Some(mut c) => {
                c.data = source.data.clone();
                c.type_ = source.type_.clone();
                api.replace(&name, &PostParams::default(), &c)
                    .await
                    .map(drop)
            }
            None => {
                let body = serde_json::json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": { "name": name, "namespace": ns },
                    "type": source.type_, "data": source.data,
                });
                api.patch(
                    &name,
                    &PatchParams::apply("konnector"),
                    &Patch::Apply(&body),
                )
                .await
                .map(drop)
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "updating the consumer kubeconfig Secret failed");
        }
    }
    status::ok("SecretValid")
}

#[cfg(test)]
mod tests {
    use super::konnector_version;

    #[test]
    fn versions_are_reported_with_a_v_or_as_unknown() {
        assert_eq!(konnector_version("0.1.0"), ("v0.1.0".into(), true));
        assert_eq!(
            konnector_version("v1.5.0-rc.1"),
            ("v1.5.0-rc.1".into(), true)
        );
        assert_eq!(konnector_version("dev"), ("unknown".into(), false));
    }
}

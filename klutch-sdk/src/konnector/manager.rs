//! The top-level controller (§5.3): watches APIServiceBindings and kubeconfig Secrets, checks
//! each binding's Secret (`SecretValid`), and attaches the binding to the provider connection of
//! its kubeconfig bytes. Bindings with identical bytes share one connection; a connection whose
//! last binding went (deleted, or moved to other bytes by a kubeconfig change) is stopped. The
//! CRDs of bindings that are gone are released ([`unbind`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::connection::{ProviderConfig, Shared};
use super::{kubeconfig, provider, status, unbind};
use crate::api::wellknown::CONSUMER_NAMESPACE;
use crate::api::{APIServiceBinding, Severity};

/// How often everything is re-checked without an event.
const RESYNC: Duration = Duration::from_secs(30);
/// How soon an unbinding in progress is looked at again.
const UNBIND_RECHECK: Duration = Duration::from_secs(1);

struct Connection {
    members: watch::Sender<BTreeSet<String>>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Runs until `cancel` fires; then stops every provider connection and waits for them.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let bindings: Api<APIServiceBinding> = Api::all(shared.consumer.clone());
    let secrets: Api<Secret> = Api::namespaced(shared.consumer.clone(), CONSUMER_NAMESPACE);
    let (store, writer) = reflector::store::<APIServiceBinding>();
    let wake = Arc::new(Notify::new());

    let binding_feed = {
        let wake = wake.clone();
        watcher(bindings, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .for_each(move |_| {
                wake.notify_one();
                futures::future::ready(())
            })
    };
    let secret_feed = {
        let wake = wake.clone();
        // Only the kubeconfig Secrets' changes matter; the reconcile reads them fresh.
        watcher(secrets, watcher::Config::default())
            .default_backoff()
            .touched_objects()
            .for_each(move |_| {
                wake.notify_one();
                futures::future::ready(())
            })
    };
    tokio::spawn(binding_feed);
    tokio::spawn(secret_feed);

    let mut connections: HashMap<[u8; 32], Connection> = HashMap::new();
    let mut released = unbind::Released::default();
    store.wait_until_ready().await.ok();
    loop {
        let bindings: Vec<Arc<APIServiceBinding>> = store.state();
        reconcile_all(&shared, &bindings, &mut connections).await;
        // Unbinding: CRDs whose binding is gone. While it still changes things (a stopping sync
        // context may re-add a finalizer), look again soon.
        let unbinding = unbind::sweep(&shared, &bindings, &mut released).await;
        let next = if unbinding { UNBIND_RECHECK } else { RESYNC };
        tokio::select! {
            () = cancel.cancelled() => break,
            () = wake.notified() => {
                // Coalesce bursts of events.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            () = tokio::time::sleep(next) => {}
        }
    }
    for (_, c) in connections.drain() {
        c.cancel.cancel();
        let _ = c.task.await;
    }
    shared.metrics.provider_connections.set(0);
}

async fn reconcile_all(
    shared: &Arc<Shared>,
    bindings: &[Arc<APIServiceBinding>],
    connections: &mut HashMap<[u8; 32], Connection>,
) {
    let mut groups: BTreeMap<[u8; 32], (ProviderConfig, BTreeSet<String>)> = BTreeMap::new();
    for binding in bindings {
        let Some(ns) = binding.namespace() else {
            continue;
        };
        let name = binding.name_any();
        let api: Api<APIServiceBinding> = Api::namespaced(shared.consumer.clone(), &ns);
        match check_secret(shared, binding).await {
            Ok((bytes, provider_ns, secret)) => {
                let _ = status::update_binding(
                    &api,
                    &name,
                    |s: &mut crate::api::APIServiceBindingStatus| {
                        crate::api::conditions::set(&mut s.conditions, status::ok("SecretValid"));
                    },
                )
                .await
                .inspect_err(|e| tracing::warn!(error = %e, "binding status"));
                let key: [u8; 32] = Sha256::digest(&bytes).into();
                groups
                    .entry(key)
                    .or_insert_with(|| {
                        (
                            ProviderConfig {
                                kubeconfig: bytes,
                                namespace: provider_ns,
                                secret,
                            },
                            BTreeSet::new(),
                        )
                    })
                    .1
                    .insert(format!("{ns}/{name}"));
            }
            Err(condition) => {
                let _ = status::update_binding(
                    &api,
                    &name,
                    |s: &mut crate::api::APIServiceBindingStatus| {
                        crate::api::conditions::set(&mut s.conditions, condition.clone());
                    },
                )
                .await
                .inspect_err(|e| tracing::warn!(error = %e, "binding status"));
                // No finalizer of ours stays on a binding (earlier versions put one there).
                unbind::release_binding(&api, binding).await;
            }
        }
    }
    // Stop connections without bindings, or whose task ended (restarted below).
    connections.retain(|key, c| {
        let keep = groups.contains_key(key) && !c.task.is_finished();
        if !keep {
            c.cancel.cancel();
        }
        keep
    });
    let mut attached = 0;
    for (key, (config, members)) in groups {
        attached += members.len();
        match connections.get(&key) {
            Some(c) => {
                c.members.send_if_modified(|current| {
                    let changed = *current != members;
                    *current = members.clone();
                    changed
                });
            }
            None => {
                tracing::info!(provider_namespace = %config.namespace, bindings = ?members, "starting a provider connection");
                let (tx, rx) = watch::channel(members);
                let cancel = CancellationToken::new();
                let task = tokio::spawn(provider::run(shared.clone(), config, rx, cancel.clone()));
                connections.insert(
                    key,
                    Connection {
                        members: tx,
                        cancel,
                        task,
                    },
                );
            }
        }
    }
    shared
        .metrics
        .provider_connections
        .set(connections.len() as i64);
    shared.metrics.bindings.set(attached as i64);
}

/// The binding's kubeconfig bytes and provider namespace, or the `SecretValid=False` condition.
async fn check_secret(
    shared: &Shared,
    binding: &APIServiceBinding,
) -> Result<(Vec<u8>, String, (String, String)), crate::api::Condition> {
    let r = &binding.spec.kubeconfig_secret_ref;
    let api: Api<Secret> = Api::namespaced(shared.consumer.clone(), &r.namespace);
    let secret = match api.get_opt(&r.name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(status::bad(
                "SecretValid",
                Severity::Error,
                "KubeconfigSecretNotFound",
                format!(
                    "Kubeconfig secret {}/{} not found. Rerun kubectl bind for repair.",
                    r.namespace, r.name
                ),
            ));
        }
        Err(e) => {
            return Err(status::bad(
                "SecretValid",
                Severity::Error,
                "KubeconfigSecretNotFound",
                format!(
                    "Kubeconfig secret {}/{} cannot be read: {e}",
                    r.namespace, r.name
                ),
            ));
        }
    };
    kubeconfig::validate(&secret, "kubeconfig")
        .map(|(bytes, ns)| (bytes, ns, (r.namespace.clone(), r.name.clone())))
        .map_err(|e| {
            status::bad(
                "SecretValid",
                Severity::Error,
                "KubeconfigSecretInvalid",
                format!("{e}. Rerun kubectl bind for repair."),
            )
        })
}

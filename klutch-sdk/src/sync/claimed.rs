//! Claimed resources (§5.12): Secrets, ConfigMaps (any namespaced resource) that an accepted
//! permission claim lets flow between the clusters, in the direction of their owner.
//!
//! [`plan`] decides, sans IO, from the consumer object and the provider object of one
//! `(consumer namespace, name)`; [`ClaimSyncer`] watches both sides in the mapped namespaces
//! only and executes the plan. Compared with Klutch: the whole selector applies to events from
//! both sides, an unannotated consumer object never goes up under `owner: Provider` (the Secret
//! leak), provider deletions delete the consumer copy in the *consumer* namespace, and only
//! `data`, `stringData`, `binaryData`, `type`, labels and annotations are compared, so nothing is
//! written while both sides agree.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

use super::claims::{Selection, Side};
use super::copy::clean_copy;
use super::naming::NamespaceMap;
use super::observe::{Hop, NoObserver, ObjectKey, SyncObserver};
use crate::api::wellknown::RESOURCE_OWNER_ANNOTATION;
use crate::api::{APIServiceNamespace, ClaimOwner, PermissionClaim};

/// What failed while syncing one claimed object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The claim's selector is invalid.
    #[error("invalid selector of the claim on {resource}")]
    Selector {
        /// The claimed resource.
        resource: String,
        /// The selector error.
        #[source]
        source: super::claims::Error,
    },
    /// An API call failed.
    #[error("{operation} {side:?} object {namespace}/{name}")]
    Api {
        /// What was being done (`get`, `create`, `update`, `delete`, `annotate`).
        operation: &'static str,
        /// Which cluster.
        side: Side,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Claim options that change the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Recreate a provider-owned object's consumer copy the consumer deleted (default true);
    /// otherwise the consumer's deletion deletes the provider object.
    pub recreate_when_consumer_side_deleted: bool,
    /// Replace an unannotated consumer object of the same name with the provider's.
    pub replace_existing: bool,
}

impl Options {
    /// The options of `claim`.
    pub fn of(claim: &PermissionClaim) -> Self {
        Options {
            recreate_when_consumer_side_deleted: claim
                .on_conflict
                .recreate_when_consumer_side_deleted,
            replace_existing: claim
                .create
                .as_ref()
                .and_then(|c| c.replace_existing)
                .unwrap_or(false),
        }
    }
}

/// One step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Create or update the consumer object to this (provider-owned mirror).
    PutConsumer(DynamicObject),
    /// Create or update the provider object to this (consumer-owned mirror).
    PutProvider(DynamicObject),
    /// Annotate the consumer object with its owner.
    AnnotateConsumer(ClaimOwner),
    /// Annotate the provider object with its owner.
    AnnotateProvider(ClaimOwner),
    /// Delete the consumer object.
    DeleteConsumer,
    /// Delete the provider object.
    DeleteProvider,
    /// A consumer object of the same name is in the way (no `replaceExisting`): report it.
    Conflict(String),
}

fn owner_annotation(obj: &DynamicObject) -> Option<&str> {
    obj.metadata
        .annotations
        .as_ref()?
        .get(RESOURCE_OWNER_ANNOTATION)
        .map(String::as_str)
}

fn owner_str(owner: ClaimOwner) -> &'static str {
    match owner {
        ClaimOwner::Provider => "Provider",
        ClaimOwner::Consumer => "Consumer",
    }
}

/// The mirror of `source` in `namespace` with the owner annotation: a clean copy (no server
/// fields, owner references or finalizers), labels, annotations and content kept.
pub fn mirror(source: &DynamicObject, namespace: &str, owner: ClaimOwner) -> DynamicObject {
    let mut copy = clean_copy(source);
    copy.metadata.namespace = Some(namespace.to_owned());
    let mut annotations = copy.metadata.annotations.take().unwrap_or_default();
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    annotations.insert(
        RESOURCE_OWNER_ANNOTATION.to_owned(),
        owner_str(owner).to_owned(),
    );
    copy.metadata.annotations = Some(annotations);
    copy
}

/// Whether `a` and `b` agree on what is synced: `data`, `stringData`, `binaryData`, `type`,
/// labels and annotations.
pub fn same_content(a: &DynamicObject, b: &DynamicObject) -> bool {
    let field = |o: &DynamicObject, k: &str| o.data.get(k).cloned().unwrap_or(Value::Null);
    let annotations = |o: &DynamicObject| {
        let mut a = o.metadata.annotations.clone().unwrap_or_default();
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        a
    };
    ["data", "stringData", "binaryData", "type"]
        .iter()
        .all(|k| field(a, k) == field(b, k))
        && a.metadata.labels.clone().unwrap_or_default()
            == b.metadata.labels.clone().unwrap_or_default()
        && annotations(a) == annotations(b)
}

/// Plans one `(consumer namespace, name)` of a claim. `consumer_deleted` says the consumer
/// object was just seen deleted (so a provider-owned copy's absence is the consumer's doing).
pub fn plan(
    selection: &Selection,
    options: Options,
    consumer_ns: &str,
    provider_ns: &str,
    consumer: Option<&DynamicObject>,
    provider: Option<&DynamicObject>,
    consumer_deleted: bool,
) -> Vec<Step> {
    let selected = |o: &DynamicObject| selection.matches(&o.metadata, Some(consumer_ns));
    let provider_owner = provider
        .filter(|p| selected(p))
        .and_then(|p| selection.owner(&p.metadata, Side::Provider));
    let consumer_owner = consumer
        .filter(|c| selected(c))
        .and_then(|c| selection.owner(&c.metadata, Side::Consumer));
    let mut steps = Vec::new();
    match (provider_owner, consumer_owner) {
        // Provider-owned: mirror down.
        (Some(ClaimOwner::Provider), _) => {
            let p = provider.expect("owner implies object");
            if owner_annotation(p) != Some("Provider") {
                steps.push(Step::AnnotateProvider(ClaimOwner::Provider));
            }
            let want = mirror(p, consumer_ns, ClaimOwner::Provider);
            match consumer {
                None if consumer_deleted && !options.recreate_when_consumer_side_deleted => steps.push(Step::DeleteProvider),
                None => steps.push(Step::PutConsumer(want)),
                Some(c) if owner_annotation(c) == Some("Provider") || options.replace_existing => {
                    if !same_content(c, &want) {
                        steps.push(Step::PutConsumer(want));
                    }
                }
                Some(c) => steps.push(Step::Conflict(format!(
                    "{consumer_ns}/{} exists in the consumer cluster and is not provider-owned; the provider's object of that name is not mirrored (claim without create.replaceExisting)",
                    c.name_any()
                ))),
            }
        }
        // Consumer-owned: mirror up.
        (_, Some(ClaimOwner::Consumer)) => {
            let c = consumer.expect("owner implies object");
            if owner_annotation(c) != Some("Consumer") {
                steps.push(Step::AnnotateConsumer(ClaimOwner::Consumer));
            }
            let want = mirror(c, provider_ns, ClaimOwner::Consumer);
            match provider {
                None => steps.push(Step::PutProvider(want)),
                Some(p) if owner_annotation(p) == Some("Consumer") => {
                    if !same_content(p, &want) {
                        steps.push(Step::PutProvider(want));
                    }
                }
                Some(p) => steps.push(Step::Conflict(format!(
                    "{provider_ns}/{} exists on the provider and is not consumer-owned; {consumer_ns}/{} is not mirrored up",
                    p.name_any(),
                    c.name_any()
                ))),
            }
        }
        // Nobody owns it (any more): remove the mirrors we made.
        // Only mirrors this claim could have made: another claim on the same resource (the
        // other direction) keeps its own.
        _ => {
            let rule = selection.claim_owner();
            if rule != Some(ClaimOwner::Provider)
                && provider.is_some_and(|p| owner_annotation(p) == Some("Consumer") && selected(p))
            {
                steps.push(Step::DeleteProvider);
            }
            if rule != Some(ClaimOwner::Consumer)
                && consumer.is_some_and(|c| owner_annotation(c) == Some("Provider") && selected(c))
            {
                steps.push(Step::DeleteConsumer);
            }
        }
    }
    steps
}

/// Mirrors the objects one accepted claim selects, between the consumer namespaces and their
/// service namespaces.
#[derive(Clone)]
pub struct ClaimSyncer {
    consumer: Client,
    provider: Client,
    ar: ApiResource,
    claim: PermissionClaim,
    selection: Selection,
    cluster_ns: String,
    namespaces: Arc<RwLock<NamespaceMap>>,
    deleted: Arc<Mutex<HashSet<(String, String)>>>,
    observer: Arc<dyn SyncObserver>,
}

impl ClaimSyncer {
    /// A syncer for `claim` on resource `ar` (e.g. core `v1` `secrets`) of the consumer whose
    /// cluster namespace is `cluster_namespace`. Fails on an invalid selector.
    pub fn new(
        consumer: Client,
        provider: Client,
        ar: ApiResource,
        claim: PermissionClaim,
        cluster_namespace: &str,
    ) -> Result<Self> {
        let selection = Selection::new(&claim.selector).map_err(|source| Error::Selector {
            resource: ar.plural.clone(),
            source,
        })?;
        Ok(ClaimSyncer {
            consumer,
            provider,
            ar,
            claim,
            selection,
            cluster_ns: cluster_namespace.to_owned(),
            namespaces: Arc::default(),
            deleted: Arc::default(),
            observer: Arc::new(NoObserver),
        })
    }

    /// Reports latencies and failures to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn SyncObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let ctx = Arc::new(self);
        let (queue_tx, queue_rx) = futures::channel::mpsc::unbounded::<(String, String)>();
        let (map_tx, map_rx) = tokio::sync::watch::channel(NamespaceMap::default());
        let mapping_feed = {
            let ctx = ctx.clone();
            let api: Api<APIServiceNamespace> =
                Api::namespaced(ctx.provider.clone(), &ctx.cluster_ns);
            let (reader, writer) = kube::runtime::reflector::store::<APIServiceNamespace>();
            watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer)
                .for_each(move |event| {
                    if event.is_ok() {
                        let state = reader.state();
                        let mapping = NamespaceMap::from_api_service_namespaces(
                            state.iter().map(|a| a.as_ref()),
                        );
                        let mut current = ctx.namespaces.write().expect("namespace map lock");
                        if *current != mapping {
                            *current = mapping.clone();
                            map_tx.send_replace(mapping);
                        }
                    }
                    futures::future::ready(())
                })
        };
        let watches = watch_both_sides(ctx.clone(), map_rx, queue_tx.clone());
        let worker = {
            let ctx = ctx.clone();
            let in_flight: Arc<Mutex<HashSet<(String, String)>>> = Arc::default();
            queue_rx.for_each_concurrent(4, move |key| {
                let (ctx, in_flight, queue_tx) = (ctx.clone(), in_flight.clone(), queue_tx.clone());
                async move {
                    if !in_flight.lock().expect("in-flight lock").insert(key.clone()) {
                        // Already being handled: look again afterwards.
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let _ = queue_tx.unbounded_send(key);
                        });
                        return;
                    }
                    let result = reconcile(&ctx, &key.0, &key.1).await;
                    in_flight.lock().expect("in-flight lock").remove(&key);
                    if let Err(e) = result {
                        tracing::warn!(object = %format!("{}/{}", key.0, key.1), error = %e, "claimed-resource sync failed; retrying");
                        let hop = match &e {
                            Error::Api { side: Side::Provider, .. } => Hop::ClaimUp,
                            _ => Hop::ClaimDown,
                        };
                        ctx.observer.failed(hop, &ObjectKey {
                            api_version: ctx.ar.api_version.clone(),
                            kind: ctx.ar.kind.clone(),
                            namespace: Some(key.0.clone()),
                            name: key.1.clone(),
                            uid: None,
                            consumer: true,
                        }, "ClaimSyncFailed", &e.to_string());
                        // Retry with fresh state (409 conflicts included).
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let _ = queue_tx.unbounded_send(key);
                        });
                    }
                }
            })
        };
        tokio::select! {
            () = shutdown => {}
            () = mapping_feed => {}
            () = watches => {}
            () = worker => {}
        }
    }
}

/// One watch per mapped namespace on each side; every event queues `(consumer ns, name)`.
async fn watch_both_sides(
    ctx: Arc<ClaimSyncer>,
    mut map_rx: tokio::sync::watch::Receiver<NamespaceMap>,
    queue: futures::channel::mpsc::UnboundedSender<(String, String)>,
) {
    let mut running: BTreeMap<(bool, String), tokio::task::JoinHandle<()>> = BTreeMap::new();
    loop {
        let map = map_rx.borrow_and_update().clone();
        let wanted: BTreeSet<(bool, String)> = map
            .provider_namespaces()
            .flat_map(|p| {
                let c = map.to_consumer(p).unwrap_or_default().to_owned();
                [(true, c), (false, p.to_owned())]
            })
            .collect();
        running.retain(|k, t| {
            let keep = wanted.contains(k);
            if !keep {
                t.abort();
            }
            keep
        });
        for (is_consumer, ns) in wanted {
            if running.contains_key(&(is_consumer, ns.clone())) {
                continue;
            }
            let client = if is_consumer {
                ctx.consumer.clone()
            } else {
                ctx.provider.clone()
            };
            let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &ctx.ar);
            let (ctx2, queue, ns2) = (ctx.clone(), queue.clone(), ns.clone());
            let task = tokio::spawn(async move {
                let events = watcher(api, watcher::Config::default()).default_backoff();
                futures::pin_mut!(events);
                while let Some(event) = events.next().await {
                    let (objects, deleted) = match event {
                        Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                            (vec![o], false)
                        }
                        Ok(watcher::Event::Delete(o)) => (vec![o], true),
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::debug!(error = %e, "claimed-resource watch failed; retrying");
                            continue;
                        }
                    };
                    for o in objects {
                        let consumer_ns = if is_consumer {
                            ns2.clone()
                        } else {
                            let map = ctx2.namespaces.read().expect("namespace map lock");
                            match map.to_consumer(&ns2) {
                                Some(c) => c.to_owned(),
                                None => continue,
                            }
                        };
                        let key = (consumer_ns, o.name_any());
                        if is_consumer && deleted {
                            ctx2.deleted
                                .lock()
                                .expect("deleted lock")
                                .insert(key.clone());
                        }
                        let _ = queue.unbounded_send(key);
                    }
                }
            });
            running.insert((is_consumer, ns), task);
        }
        if map_rx.changed().await.is_err() {
            break;
        }
    }
    std::future::pending::<()>().await;
}

async fn reconcile(ctx: &ClaimSyncer, consumer_ns: &str, name: &str) -> Result<()> {
    let started = std::time::Instant::now();
    let Some(provider_ns) = ctx
        .namespaces
        .read()
        .expect("namespace map lock")
        .to_provider(consumer_ns)
        .map(str::to_owned)
    else {
        return Ok(());
    };
    let consumer_api: Api<DynamicObject> =
        Api::namespaced_with(ctx.consumer.clone(), consumer_ns, &ctx.ar);
    let provider_api: Api<DynamicObject> =
        Api::namespaced_with(ctx.provider.clone(), &provider_ns, &ctx.ar);
    let api_err = |operation, side, namespace: &str| {
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        move |source: kube::Error| Error::Api {
            operation,
            side,
            namespace,
            name,
            source: Box::new(source),
        }
    };
    let consumer =
        consumer_api
            .get_opt(name)
            .await
            .map_err(api_err("get", Side::Consumer, consumer_ns))?;
    let provider =
        provider_api
            .get_opt(name)
            .await
            .map_err(api_err("get", Side::Provider, &provider_ns))?;
    let deleted = ctx
        .deleted
        .lock()
        .expect("deleted lock")
        .remove(&(consumer_ns.to_owned(), name.to_owned()))
        && consumer.is_none();
    let steps = plan(
        &ctx.selection,
        Options::of(&ctx.claim),
        consumer_ns,
        &provider_ns,
        consumer.as_ref(),
        provider.as_ref(),
        deleted,
    );
    for step in steps {
        match step {
            Step::PutConsumer(want) => {
                put(&consumer_api, consumer.as_ref(), want, &ctx.ar)
                    .await
                    .map_err(api_err("write", Side::Consumer, consumer_ns))?;
                ctx.observer.synced(Hop::ClaimDown, started.elapsed());
            }
            Step::PutProvider(want) => {
                put(&provider_api, provider.as_ref(), want, &ctx.ar)
                    .await
                    .map_err(api_err("write", Side::Provider, &provider_ns))?;
                ctx.observer.synced(Hop::ClaimUp, started.elapsed());
            }
            Step::AnnotateConsumer(owner) => annotate(&consumer_api, name, owner)
                .await
                .map_err(api_err("annotate", Side::Consumer, consumer_ns))?,
            Step::AnnotateProvider(owner) => annotate(&provider_api, name, owner)
                .await
                .map_err(api_err("annotate", Side::Provider, &provider_ns))?,
            Step::DeleteConsumer => delete(&consumer_api, name).await.map_err(api_err(
                "delete",
                Side::Consumer,
                consumer_ns,
            ))?,
            Step::DeleteProvider => delete(&provider_api, name).await.map_err(api_err(
                "delete",
                Side::Provider,
                &provider_ns,
            ))?,
            Step::Conflict(message) => {
                tracing::warn!(object = %format!("{consumer_ns}/{name}"), %message, "claimed-resource conflict");
                ctx.observer.failed(
                    Hop::ClaimDown,
                    &ObjectKey {
                        api_version: ctx.ar.api_version.clone(),
                        kind: ctx.ar.kind.clone(),
                        namespace: Some(consumer_ns.to_owned()),
                        name: name.to_owned(),
                        uid: consumer.as_ref().and_then(|c| c.metadata.uid.clone()),
                        consumer: true,
                    },
                    "ClaimConflict",
                    &message,
                );
            }
        }
    }
    Ok(())
}

/// Creates `want`, or replaces `existing` with it (carrying its resourceVersion, so a concurrent
/// change is a 409 and the reconcile retries with fresh state).
async fn put(
    api: &Api<DynamicObject>,
    existing: Option<&DynamicObject>,
    mut want: DynamicObject,
    ar: &ApiResource,
) -> Result<(), kube::Error> {
    want.types = Some(kube::api::TypeMeta {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
    });
    match existing {
        None => api.create(&PostParams::default(), &want).await.map(drop),
        Some(e) => {
            want.metadata.resource_version = e.metadata.resource_version.clone();
            want.metadata.finalizers = e.metadata.finalizers.clone();
            want.metadata.owner_references = e.metadata.owner_references.clone();
            api.replace(&e.name_any(), &PostParams::default(), &want)
                .await
                .map(drop)
        }
    }
}

async fn annotate(
    api: &Api<DynamicObject>,
    name: &str,
    owner: ClaimOwner,
) -> Result<(), kube::Error> {
    let patch =
        json!({ "metadata": { "annotations": { RESOURCE_OWNER_ANNOTATION: owner_str(owner) } } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
}

async fn delete(api: &Api<DynamicObject>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::claims::ResourceSelector;

    fn ar() -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("", "v1", "Secret"),
            "secrets",
        )
    }

    fn secret(ns: &str, name: &str, owner: Option<&str>, value: &str) -> DynamicObject {
        let mut o = DynamicObject::new(name, &ar()).within(ns);
        if let Some(owner) = owner {
            o.metadata.annotations =
                Some([(RESOURCE_OWNER_ANNOTATION.to_string(), owner.to_string())].into());
        }
        o.metadata.uid = Some(format!("uid-{ns}"));
        o.data = json!({ "data": { "k": value }, "type": "Opaque" });
        o
    }

    fn sel(owner: Option<ClaimOwner>) -> Selection {
        Selection::new(&ResourceSelector {
            owner,
            ..ResourceSelector::default()
        })
        .unwrap()
    }

    const OPTS: Options = Options {
        recreate_when_consumer_side_deleted: true,
        replace_existing: false,
    };

    fn run(
        owner: Option<ClaimOwner>,
        c: Option<&DynamicObject>,
        p: Option<&DynamicObject>,
    ) -> Vec<Step> {
        plan(&sel(owner), OPTS, "team-a", "cx-team-a", c, p, false)
    }

    #[test]
    fn provider_objects_come_down_annotated() {
        let p = secret("cx-team-a", "creds", None, "s3cr3t");
        let steps = run(Some(ClaimOwner::Provider), None, Some(&p));
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert_eq!(steps[0], Step::AnnotateProvider(ClaimOwner::Provider));
        let Step::PutConsumer(down) = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(down.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(down.metadata.uid, None);
        assert_eq!(owner_annotation(down), Some("Provider"));
        // In sync: nothing to do.
        let p = secret("cx-team-a", "creds", Some("Provider"), "s3cr3t");
        let c = mirror(&p, "team-a", ClaimOwner::Provider);
        assert_eq!(run(Some(ClaimOwner::Provider), Some(&c), Some(&p)), vec![]);
        // Consumer edits are overwritten.
        let mut edited = c.clone();
        edited.data["data"]["k"] = json!("hacked");
        assert!(matches!(
            run(Some(ClaimOwner::Provider), Some(&edited), Some(&p))[..],
            [Step::PutConsumer(_)]
        ));
        // Provider deletion removes the consumer copy.
        assert_eq!(
            run(Some(ClaimOwner::Provider), Some(&c), None),
            vec![Step::DeleteConsumer]
        );
    }

    #[test]
    fn consumer_deletion_recreates_or_deletes_per_on_conflict() {
        let p = secret("cx-team-a", "creds", Some("Provider"), "v");
        let s = sel(Some(ClaimOwner::Provider));
        assert!(matches!(
            plan(&s, OPTS, "team-a", "cx-team-a", None, Some(&p), true)[..],
            [Step::PutConsumer(_)]
        ));
        let keep_deleted = Options {
            recreate_when_consumer_side_deleted: false,
            ..OPTS
        };
        assert_eq!(
            plan(
                &s,
                keep_deleted,
                "team-a",
                "cx-team-a",
                None,
                Some(&p),
                true
            ),
            vec![Step::DeleteProvider]
        );
    }

    #[test]
    fn an_unannotated_consumer_secret_never_goes_up_under_owner_provider() {
        let c = secret("team-a", "private", None, "mine");
        assert_eq!(run(Some(ClaimOwner::Provider), Some(&c), None), vec![]);
        // ... nor when a provider object of that name exists: that is a conflict, not a leak.
        let p = secret("cx-team-a", "private", None, "theirs");
        let steps = run(Some(ClaimOwner::Provider), Some(&c), Some(&p));
        assert_eq!(steps[0], Step::AnnotateProvider(ClaimOwner::Provider));
        assert!(matches!(steps[1], Step::Conflict(_)), "{steps:?}");
        // With replaceExisting the provider's wins.
        let replace = Options {
            replace_existing: true,
            ..OPTS
        };
        let steps = plan(
            &sel(Some(ClaimOwner::Provider)),
            replace,
            "team-a",
            "cx-team-a",
            Some(&c),
            Some(&p),
            false,
        );
        assert!(matches!(steps[1], Step::PutConsumer(_)));
    }

    #[test]
    fn consumer_objects_go_up_only_when_the_claim_allows() {
        let c = secret("team-a", "shared", None, "v");
        let steps = run(Some(ClaimOwner::Consumer), Some(&c), None);
        assert_eq!(steps[0], Step::AnnotateConsumer(ClaimOwner::Consumer));
        let Step::PutProvider(up) = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(up.metadata.namespace.as_deref(), Some("cx-team-a"));
        // Consumer deletion removes the provider copy.
        let p = mirror(&c, "cx-team-a", ClaimOwner::Consumer);
        assert_eq!(
            run(Some(ClaimOwner::Consumer), None, Some(&p)),
            vec![Step::DeleteProvider]
        );
        // A provider object the consumer did not make is not overwritten.
        let theirs = secret("cx-team-a", "shared", Some("Provider"), "x");
        assert!(matches!(
            run(Some(ClaimOwner::Consumer), Some(&c), Some(&theirs))[..],
            [Step::AnnotateConsumer(_), Step::Conflict(_)]
        ));
    }

    #[test]
    fn two_claims_on_one_resource_leave_each_others_mirrors_alone() {
        let up = secret("team-a", "shared", Some("Consumer"), "v");
        let up_copy = mirror(&up, "cx-team-a", ClaimOwner::Consumer);
        assert_eq!(
            run(Some(ClaimOwner::Provider), Some(&up), Some(&up_copy)),
            vec![]
        );
        let down = secret("cx-team-a", "creds", Some("Provider"), "v");
        let down_copy = mirror(&down, "team-a", ClaimOwner::Provider);
        assert_eq!(
            run(Some(ClaimOwner::Consumer), Some(&down_copy), Some(&down)),
            vec![]
        );
    }

    #[test]
    fn the_selector_filters_both_sides() {
        let s = Selection::new(&ResourceSelector {
            label_selectors: vec![[("share".to_string(), "yes".to_string())].into()],
            owner: Some(ClaimOwner::Consumer),
            ..ResourceSelector::default()
        })
        .unwrap();
        let plain = secret("team-a", "x", None, "v");
        assert_eq!(
            plan(&s, OPTS, "team-a", "cx-team-a", Some(&plain), None, false),
            vec![]
        );
        let mut labelled = plain.clone();
        labelled.metadata.labels = Some([("share".to_string(), "yes".to_string())].into());
        assert_eq!(
            plan(
                &s,
                OPTS,
                "team-a",
                "cx-team-a",
                Some(&labelled),
                None,
                false
            )
            .len(),
            2
        );
        // Provider objects outside the selector are not mirrored down either.
        let ps = Selection::new(&ResourceSelector {
            names: vec!["only-this".into()],
            ..ResourceSelector::default()
        })
        .unwrap();
        let p = secret("cx-team-a", "other", None, "v");
        assert_eq!(
            plan(&ps, OPTS, "team-a", "cx-team-a", None, Some(&p), false),
            vec![]
        );
    }
}

//! Claimed resources (§5.12): Secrets, ConfigMaps (any namespaced resource) that an accepted
//! permission claim lets flow between the clusters, in the direction of their owner.
//!
//! [`plan`] decides, from the consumer object and the provider object of one
//! `(consumer namespace, name)`, which steps bring the two in line; the konnector's
//! `ClaimSyncer` (`klutch_sdk::konnector::claimed`, feature `konnector`) watches both sides and
//! executes them. Compared with Klutch: the whole selector applies to events from both sides, an
//! unannotated consumer object never goes up under `owner: Provider` (the Secret leak), provider
//! deletions delete the consumer copy in the *consumer* namespace, and only `data`,
//! `stringData`, `binaryData`, `type`, labels and annotations are compared, so nothing is written
//! while both sides agree.

use kube::ResourceExt as _;
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::claims::{Selection, Side};
use super::copy::clean_copy;
use crate::api::ClaimOwner;
use crate::api::PermissionClaim;
use crate::api::wellknown::RESOURCE_OWNER_ANNOTATION;

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

/// The JSON merge patch that marks an object with its owner ([`Step::AnnotateConsumer`],
/// [`Step::AnnotateProvider`]).
pub fn owner_patch(owner: ClaimOwner) -> Value {
    json!({ "metadata": { "annotations": { RESOURCE_OWNER_ANNOTATION: owner_str(owner) } } })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::claims::ResourceSelector;
    use kube::api::ApiResource;

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
    fn owner_patches_name_the_owner() {
        for (owner, value) in [
            (ClaimOwner::Provider, "Provider"),
            (ClaimOwner::Consumer, "Consumer"),
        ] {
            assert_eq!(
                owner_patch(owner),
                json!({ "metadata": { "annotations": { RESOURCE_OWNER_ANNOTATION: value } } })
            );
        }
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
